"""OpenID Connect for Identity Assurance 1.0: `verified_claims` asked for through `claims`.

A request (IDA §6) puts `verified_claims` in the `id_token` or `userinfo` member of the `claims`
parameter: an object, or an array of objects, each `{"verification": {...}, "claims": {...}}`.
A request that is not that shape — no `verification` object, a missing or empty `claims` object, a
`purpose` outside 3–300 characters — is `invalid_request` (IDA §6.5). Everything else is answered
by omission, never by an error (IDA §6.5, OIDC Core §5.5): claims Yihao does not verify or the
account does not have are left out; an element whose `claims` end up empty, or whose
`trust_framework`, `assurance_level`, `time.max_age` or evidence `type` filter the verification
does not match, is left out whole.

What Yihao verifies: the legal `name` (matched with the ID number in the population registry),
and what the ID number itself states — `birthdate` and `gender` — plus the number, as
`ID_NUMBER` (whole, only to clients an administrator allowed and after the person consented) or
`ID_NUMBER_MASKED`. The evidence is an `electronic_record`: the registry that was checked.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from realname import idnumber
from realname.pii import IdNumber

CLAIM = "verified_claims"
# Not standard claims: collision-resistant names (OIDC Core §5.1.2).
ID_NUMBER = "urn:yihao:claims:id_number"
ID_NUMBER_MASKED = "urn:yihao:claims:id_number_masked"
CLAIMS = ("name", "birthdate", "gender", ID_NUMBER, ID_NUMBER_MASKED)
EVIDENCE = ("electronic_record",)
RECORD_TYPES = ("population_register",)
LEVEL_NAMES = {1: "L1", 2: "L2", 3: "L3", 4: "L4"}
VERIFIED_LEVEL = 2  # below it nothing is verified against a registry: no verified_claims at all
VERIFICATION_KEYS = ("trust_framework", "assurance_level", "time", "verification_process", "evidence")


class VerifiedClaimsError(ValueError):
    """A verified_claims request that IDA §6.5 answers with invalid_request; the message says why."""


@dataclass(frozen=True)
class Record:
    """How and when an account's identity was verified, and what was verified."""

    level: int
    verified_at: datetime
    source: str  # the registry that confirmed it, e.g. "local-population-registry"
    name: str
    id_number: IdNumber


# -- the request -----------------------------------------------------------------------------------

def validate(request: Any, where: str) -> None:
    """Raise VerifiedClaimsError unless `request` is a verified_claims request IDA §6 allows."""
    elements = request if isinstance(request, list) else [request]
    if not elements:
        raise VerifiedClaimsError(f"{where} must not be an empty array")
    for n, element in enumerate(elements):
        at = f"{where}[{n}]" if isinstance(request, list) else where
        if not isinstance(element, dict):
            raise VerifiedClaimsError(f"{at} must be a JSON object")
        if not isinstance(element.get("verification"), dict):
            raise VerifiedClaimsError(f"{at}.verification must be a JSON object")
        claims = element.get("claims")
        if not isinstance(claims, dict) or not claims:
            raise VerifiedClaimsError(f"{at}.claims must be a non-empty JSON object")
        for name, value in claims.items():
            _check_entry(value, f"{at}.claims.{name}")
        for name, value in element["verification"].items():
            if name == "evidence":
                _check_evidence(value, f"{at}.verification.evidence")
            else:
                _check_entry(value, f"{at}.verification.{name}")


def _check_entry(value: Any, where: str) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        raise VerifiedClaimsError(f"{where} must be null or a JSON object")
    purpose = value.get("purpose")
    if purpose is not None and (not isinstance(purpose, str) or not 3 <= len(purpose) <= 300):
        raise VerifiedClaimsError(f"{where}.purpose must be 3 to 300 characters")  # IDA §6.1.1
    if "values" in value and not isinstance(value["values"], list):
        raise VerifiedClaimsError(f"{where}.values must be an array")
    max_age = value.get("max_age")
    if max_age is not None and (type(max_age) is not int or max_age < 0):
        raise VerifiedClaimsError(f"{where}.max_age must be a non-negative integer")


def _check_evidence(value: Any, where: str) -> None:
    if value is None:
        return
    if not isinstance(value, list) or not all(isinstance(e, dict) for e in value):
        raise VerifiedClaimsError(f"{where} must be an array of JSON objects")
    for n, evidence in enumerate(value):
        _check_entry(evidence.get("type"), f"{where}[{n}].type")


def wants_id_number(request: Any) -> bool:
    """Whether a (valid) request asks for the whole ID number anywhere."""
    elements = request if isinstance(request, list) else [request]
    return any(ID_NUMBER in (e.get("claims") or {}) for e in elements if isinstance(e, dict))


# -- the answer ------------------------------------------------------------------------------------

def select(request: Any, record: Record | None, *, trust_framework: str, whole_id_number: bool,
           now: datetime | None = None) -> dict[str, Any] | list[dict[str, Any]] | None:
    """The verified_claims to release for `request`, or None when nothing is (the claim is omitted)."""
    if record is None or record.level < VERIFIED_LEVEL:
        return None
    now = now or datetime.now(timezone.utc)
    elements = request if isinstance(request, list) else [request]
    answers = [a for a in (_element(e, record, trust_framework, whole_id_number, now) for e in elements) if a]
    if not answers:
        return None
    return answers if isinstance(request, list) else answers[0]


def _element(element: dict[str, Any], record: Record, trust_framework: str, whole_id_number: bool,
             now: datetime) -> dict[str, Any] | None:
    wanted = element["verification"]
    verification = _verification(record, trust_framework)
    for name in ("trust_framework", "assurance_level"):
        if not _matches(wanted.get(name), verification[name]):
            return None
    max_age = (wanted.get("time") or {}).get("max_age")
    if max_age is not None and (now - _aware(record.verified_at)).total_seconds() > max_age:
        return None
    if "evidence" in wanted and wanted["evidence"] is not None:
        if not any(_matches(e.get("type"), "electronic_record") for e in wanted["evidence"]):
            return None
    claims = _claims(element["claims"], record, whole_id_number)
    if not claims:
        return None
    out = {k: v for k, v in verification.items() if k == "trust_framework" or k in wanted}
    return {"verification": out, "claims": claims}


def _matches(request: Any, actual: str) -> bool:
    """A `value`/`values` constraint on a verification element (IDA §6.4.1); none matches anything."""
    if not isinstance(request, dict):
        return True
    allowed = ([request["value"]] if "value" in request else []) + list(request.get("values", []))
    return not allowed or actual in allowed


def _verification(record: Record, trust_framework: str) -> dict[str, Any]:
    when = _iso(record.verified_at)
    return {
        "trust_framework": trust_framework,
        "assurance_level": LEVEL_NAMES.get(record.level, f"L{record.level}"),
        "time": when,
        "evidence": [{
            "type": "electronic_record",
            "check_details": [{"check_method": "data", "organization": record.source, "time": when}],
            "record": {"type": "population_register", "source": {"name": record.source, "country_code": "CHN"}},
        }],
    }


def _claims(requested: dict[str, Any], record: Record, whole_id_number: bool) -> dict[str, Any]:
    facts = idnumber.parse_id_number(record.id_number.reveal(), today=_aware(record.verified_at).date())
    values: dict[str, Any] = {
        "name": record.name,
        "birthdate": facts.birth_date.isoformat(),
        "gender": "male" if facts.sex == "M" else "female",
        ID_NUMBER_MASKED: record.id_number.masked,
    }
    if whole_id_number:
        values[ID_NUMBER] = record.id_number.reveal()
    out = {name: values[name] for name in requested if name in values}
    if ID_NUMBER in requested and ID_NUMBER not in out:  # not allowed or not consented: the masked form
        out[ID_NUMBER_MASKED] = record.id_number.masked
    return out


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _iso(moment: datetime) -> str:
    return _aware(moment).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def metadata(trust_framework: str) -> dict[str, Any]:
    """Discovery fields of IDA §9."""
    return {
        "verified_claims_supported": True,
        "trust_frameworks_supported": [trust_framework],
        "evidence_supported": list(EVIDENCE),
        "electronic_records_supported": list(RECORD_TYPES),
        "claims_in_verified_claims_supported": list(CLAIMS),
    }
