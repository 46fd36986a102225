"""Find the credit code or ID number in a certificate: no single convention exists, so every field
the CA's profile names is read, decoded tolerantly, and each value is validated (GB 32100 /
GB 11643) rather than trusted for its label."""
from __future__ import annotations

import re
from dataclasses import dataclass

from cryptography import x509

from idp.pki import der
from realname.errors import ValidationError
from realname.pii import CreditCode, IdNumber

_RUNS = re.compile(r"[0-9A-Z]+")
# Fields whose only purpose is an identifier: a value there that fails validation is reported as
# invalid. Names (CN, OU) often hold other letters and digits, so there a failed value is ignored.
_NAME_FIELDS = ("subject:2.5.4.3", "subject:2.5.4.11")


@dataclass(frozen=True)
class Identifiers:
    credit_code: CreditCode | None = None
    id_number: IdNumber | None = None
    invalid: bool = False  # a dedicated identifier field held a value that failed validation
    source: str | None = None  # the field the identifier came from


def extract(certificate: x509.Certificate, fields: tuple[str, ...]) -> Identifiers:
    """The first valid credit code and ID number found in `fields`, in the profile's order."""
    credit_code = id_number = source = None
    invalid = False
    extensions = {e.oid.dotted_string: e.value for e in certificate.extensions}
    for name in fields:
        for text in _values(certificate, extensions, name):
            code, number, bad = _identifiers(text)
            if code and credit_code is None:
                credit_code, source = code, source or name
            if number and id_number is None:
                id_number, source = number, source or name
            invalid = invalid or (bad and name not in _NAME_FIELDS)
    return Identifiers(credit_code, id_number, invalid and not (credit_code or id_number), source)


def _values(certificate: x509.Certificate, extensions: dict[str, object], name: str) -> list[str]:
    kind, _, dotted = name.partition(":")
    if kind == "subject":
        return [str(a.value) for a in certificate.subject.get_attributes_for_oid(x509.ObjectIdentifier(dotted))]
    value = extensions.get(dotted)
    if value is None:
        return []
    raw = value.value if isinstance(value, x509.UnrecognizedExtension) else b""
    text = der.first_string(raw)
    if text is None:  # not DER at all: some CAs store the bare characters
        text = raw.decode("ascii", "ignore")
    return [text]


def _identifiers(text: str) -> tuple[CreditCode | None, IdNumber | None, bool]:
    """Every 18-character window (15 for old ID numbers) of every letter/digit run, validated."""
    code = number = None
    seen = False
    for run in _RUNS.findall(text.upper()):
        windows = [run] if len(run) == 15 else [run[i:i + 18] for i in range(len(run) - 17)]
        for window in windows:
            seen = True
            code = code or _parse(CreditCode, window)
            number = number or _parse(IdNumber, window)
    return code, number, seen and not (code or number)


def _parse(kind: type[CreditCode] | type[IdNumber], value: str) -> CreditCode | IdNumber | None:  # type: ignore[return]
    try:
        return kind.parse(value)  # type: ignore[return-value]
    except ValidationError:
        return None
