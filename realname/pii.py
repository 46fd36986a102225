"""Personal data at rest: values that mask themselves, AEAD sealing bound to the row, blind indexes.

``IdNumber("350102199003070012")`` prints ``3501**********0012`` in str(), repr(), f-strings, log
records and JSON logs; ``reveal()`` is the one way out and its caller records ``pii.revealed``.
The vault seals with a key derived from the master key per (cipher, version) — the key id stored
with each row — so keys rotate by raising ``YIHAO_PII_KEY_VERSION`` and running
``yihao keys rewrap``, while rows under older ids stay readable.
"""
from __future__ import annotations

import hashlib
import hmac
import unicodedata
from dataclasses import dataclass
from datetime import date
from typing import ClassVar, TypeVar

from idp.crypto import Aead, MasterKey, equal
from idp.settings import Settings
from realname import idnumber, uscc

CIPHERS = ("aes-256-gcm", "sm4-gcm")
S = TypeVar("S", bound="Sensitive")


class Sensitive:
    """A normalised identifier that never shows itself whole except through ``reveal()``."""

    __slots__ = ("_value",)
    kind: ClassVar[str]
    _value: str

    def __init__(self, value: str) -> None:
        object.__setattr__(self, "_value", value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def reveal(self) -> str:
        """The whole value. Callers showing it to a person record ``events.PII_REVEALED`` with a reason."""
        return self._value

    @property
    def masked(self) -> str:
        return idnumber.mask(self._value)

    def __str__(self) -> str:
        return self.masked

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.masked!r})"

    def __format__(self, spec: str) -> str:
        return format(self.masked, spec)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and equal(self._value, other._value)  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((self.kind, self._value))

    def __reduce__(self) -> tuple[object, ...]:
        # A pickle (a cache, a queue, a crash dump) would hold the value in clear.
        raise TypeError(f"{type(self).__name__} cannot be pickled; store it sealed")


class IdNumber(Sensitive):
    """A valid resident identity number (18 characters, 15-digit numbers converted)."""

    __slots__ = ()
    kind = "id_number"

    @classmethod
    def parse(cls, raw: str, *, today: date | None = None) -> IdNumber:
        """Validate (raises ``IdNumberError``) and keep the normalised 18-character number."""
        return cls(idnumber.parse_id_number(raw, today=today).value)


class CreditCode(Sensitive):
    """A valid unified social credit code."""

    __slots__ = ()
    kind = "credit_code"

    @classmethod
    def parse(cls, raw: str) -> CreditCode:
        """Validate (raises ``CreditCodeError``) and keep the normalised code."""
        return cls(uscc.parse_credit_code(raw).value)


def normalise_name(name: str) -> str:
    """NFKC, no whitespace, one middle dot for the dots that join transliterated names, case-folded."""
    text = "".join(unicodedata.normalize("NFKC", name).split())
    return text.translate(_DOTS).casefold()


_DOTS = {ord(c): "·" for c in "•‧・･.．"}


@dataclass(frozen=True)
class Sealed:
    """What a row stores: the id of the key that sealed it and nonce + ciphertext + tag."""

    key_id: str
    blob: bytes


class PiiVault:
    """Seals, opens and indexes personal identifiers with keys derived from the master key."""

    def __init__(self, master: MasterKey, cipher: str = "aes-256-gcm", version: int = 1) -> None:
        if cipher not in CIPHERS:
            raise ValueError(f"unknown PII cipher {cipher!r}")
        self._master = master
        self.key_id = f"{cipher}/{version}"
        self._aeads: dict[str, Aead] = {}
        self._index_keys = {kind: master.derive(f"pii/blind-index/{kind}") for kind in ("id_number", "credit_code")}
        self._name_key = master.derive("pii/name-digest")

    def _aead(self, key_id: str) -> Aead:
        aead = self._aeads.get(key_id)
        if aead is None:
            cipher, _, version = key_id.partition("/")
            if cipher not in CIPHERS or not version.isdigit():
                raise ValueError(f"unknown PII key id {key_id!r}")
            # The cipher is part of the purpose: an SM4 key is never a prefix of an AES key.
            aead = self._aeads[key_id] = self._master.aead(f"pii/{cipher}/{version}", cipher)
        return aead

    def seal(self, value: Sensitive, *, table: str, column: str, row_id: str) -> Sealed:
        """Seal under the newest key; the associated data binds table, column and row."""
        aad = _aad(table, column, row_id)
        return Sealed(self.key_id, self._aead(self.key_id).seal(value._value.encode(), aad))

    def open(self, sealed: Sealed, kind: type[S], *, table: str, column: str, row_id: str) -> S:
        """Open a row's value; ``InvalidTag`` when it was moved from another row or altered."""
        return kind(self._open(sealed, _aad(table, column, row_id)).decode())

    def rewrap(self, sealed: Sealed, *, table: str, column: str, row_id: str) -> Sealed:
        """The same value sealed under the newest key (rotation), never leaving bytes."""
        aad = _aad(table, column, row_id)
        return Sealed(self.key_id, self._aead(self.key_id).seal(self._open(sealed, aad), aad))

    def _open(self, sealed: Sealed, aad: str) -> bytes:
        return self._aead(sealed.key_id).open(sealed.blob, aad)

    def blind_index(self, value: Sensitive) -> bytes:
        """Keyed HMAC-SHA256 of the normalised value: lookups and uniqueness without the value.

        Never a plain hash: about 10^10 plausible ID numbers are enumerated in minutes.
        """
        return hmac.new(self._index_keys[value.kind], value._value.encode(), hashlib.sha256).digest()

    def name_digest(self, name: str, row: bytes) -> bytes:
        """Keyed HMAC of a normalised name bound to its row, so equal names do not show as equal."""
        return hmac.new(self._name_key, row + normalise_name(name).encode(), hashlib.sha256).digest()


def _aad(table: str, column: str, row_id: str) -> str:
    return f"{table}/{column}/{row_id}"


def open_vault(settings: Settings, master: MasterKey) -> PiiVault:
    """The vault the settings describe (cipher and newest key version)."""
    return PiiVault(master, settings.pii_cipher, settings.pii_key_version)
