"""The `claims` request parameter (OIDC Core §5.5): parse it, and select what it may release.

Consent: a requested standard claim stands for the scope that releases it (OIDC Core §5.4), so
asking for `email` through `claims` needs the same consent as scope `email`, and the consent page
lists that scope. Claims outside the client's registered scopes, and claims Yihao does not know,
are ignored (§5.5: not an error). `value`/`values` shape only `acr`; other claims are released
with the account's own value. `verified_claims` (OpenID Connect for Identity Assurance) is
validated and selected in idp.verified_claims; consenting to it is the consent item
`verified_claims`, and to the whole ID number inside it the item `id_number` (only for a client an
administrator allowed to receive it).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Mapping

from idp.accounts import Profile
from idp import verified_claims
from idp.authn.acr import DEFAULT as DEFAULT_ACR, AcrRequest, AcrValues
from idp.clients import RegisteredClient
from idp.tokens import Authentication
from idp.untrusted import parse_json

SCOPE_CLAIMS = {
    "profile": ("name", "given_name", "family_name", "preferred_username", "locale", "updated_at"),
    "email": ("email", "email_verified"),
    "phone": ("phone_number", "phone_number_verified"),
}
CLAIM_SCOPE = {claim: scope for scope, names in SCOPE_CLAIMS.items() for claim in names}
MAX_LENGTH = 4096
Requests = dict[str, dict[str, Any] | None]


class ClaimsError(ValueError):
    """A `claims` parameter that is not what §5.5 describes; the message says what is wrong."""


class Unmet(Exception):
    """The authentication does not satisfy the request: an error code and description for the client."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error, self.description = error, description


# OpenID Connect Core Unmet Authentication Requirements 1.0
UNMET_ACR = ("unmet_authentication_requirements", "the authentication cannot meet the essential acr requested")


@dataclass(frozen=True)
class ClaimsRequest:
    id_token: Requests = field(default_factory=dict)
    userinfo: Requests = field(default_factory=dict)


def parse(raw: str | None) -> ClaimsRequest:
    if not raw:
        return ClaimsRequest()
    if len(raw) > MAX_LENGTH:
        raise ClaimsError(f"claims must be at most {MAX_LENGTH} characters")
    try:
        value = parse_json(raw)
    except ValueError:
        raise ClaimsError("claims is not valid JSON") from None
    if not isinstance(value, dict):
        raise ClaimsError("claims must be a JSON object")
    return ClaimsRequest(_member(value, "id_token"), _member(value, "userinfo"))


def _member(value: dict[str, Any], name: str) -> Requests:
    member = value.get(name, {})
    if not isinstance(member, dict):
        raise ClaimsError(f"claims.{name} must be a JSON object")
    for claim, request in member.items():
        where = f"claims.{name}.{claim}"
        if claim == verified_claims.CLAIM:
            try:
                verified_claims.validate(request, where)
            except verified_claims.VerifiedClaimsError as exc:
                raise ClaimsError(str(exc)) from None
            continue
        if request is None:
            continue
        if not isinstance(request, dict):
            raise ClaimsError(f"{where} must be null or a JSON object")
        if not isinstance(request.get("essential", False), bool):
            raise ClaimsError(f"{where}.essential must be true or false")
        if not isinstance(request.get("values", []), list):
            raise ClaimsError(f"{where}.values must be an array")
    return member


def acr_request(params: Mapping[str, str], acr: AcrValues = DEFAULT_ACR) -> AcrRequest:
    """`claims.id_token.acr` if present, else `acr_values` as a voluntary request (OIDC Core §3.1.2.1)."""
    wanted = parse(params.get("claims")).id_token
    if "acr" not in wanted:
        return AcrRequest(tuple(params.get("acr_values", "").split()), acr=acr)
    request = wanted["acr"] or {}
    values = ([request["value"]] if "value" in request else []) + request.get("values", [])
    if not all(isinstance(v, str) for v in values):
        raise ClaimsError("claims.id_token.acr values must be strings")
    return AcrRequest(tuple(values), request.get("essential", False), acr)


def consent_scope(client: RegisteredClient, params: Mapping[str, str]) -> str:
    """What consent must cover: the scopes requested, those of the claims requested, and the
    verified_claims items (`verified_claims`, and `id_number` for a client allowed the whole number)."""
    request = parse(params.get("claims"))
    extra = [CLAIM_SCOPE[c] for c in [*request.id_token, *request.userinfo] if c in CLAIM_SCOPE]
    scope = client.get_allowed_scope(" ".join(dict.fromkeys([*params.get("scope", "").split(), *extra])))
    return " ".join([scope, *verified_items(client, request)]).strip()


VERIFIED_ITEM, ID_NUMBER_ITEM = "verified_claims", "id_number"


def verified_items(client: RegisteredClient, request: ClaimsRequest) -> list[str]:
    """The consent items a verified_claims request adds."""
    asked = [m[verified_claims.CLAIM] for m in (request.id_token, request.userinfo) if verified_claims.CLAIM in m]
    if not asked:
        return []
    whole = client.release_id_number and any(verified_claims.wants_id_number(r) for r in asked)
    return [VERIFIED_ITEM, *([ID_NUMBER_ITEM] if whole else [])]


def granted(client: RegisteredClient, names: Iterable[str]) -> tuple[str, ...]:
    """The requested standard claims the client's registered scopes allow."""
    return tuple(n for n in names if n in CLAIM_SCOPE and CLAIM_SCOPE[n] in client.allowed_scopes)


def requested_sub(params: Mapping[str, str]) -> str | None:
    """`claims.id_token.sub.value`: the only end-user this request may be answered for (§5.5.1)."""
    request = parse(params.get("claims")).id_token.get("sub") or {}
    return request["value"] if isinstance(request.get("value"), str) else None


def for_request(params: Mapping[str, str], client: RegisteredClient, auth: Authentication,
                subject: str, acr_values: AcrValues = DEFAULT_ACR) -> Authentication:
    """The authentication as this request's grant reports it: the acr it asked for and the claims it
    may receive. Raises Unmet for an unmet essential acr or another end-user than the `sub` requested."""
    acr = acr_request(params, acr_values).select(auth.acr)
    if acr is None or acr_values.rank(auth.acr) < acr_values.floor(client.minimum_acr):
        raise Unmet(*UNMET_ACR)
    if requested_sub(params) not in (None, subject):  # §5.5.1: never an answer for a different user
        raise Unmet("access_denied", "the end-user is not the one the sub claim requests")
    request = parse(params.get("claims"))
    return replace(auth, acr=acr, id_token_claims=granted(client, request.id_token),
                   userinfo_claims=granted(client, request.userinfo),
                   id_token_verified=request.id_token.get(verified_claims.CLAIM),
                   userinfo_verified=request.userinfo.get(verified_claims.CLAIM))


def release(profile: Profile, names: Iterable[str]) -> dict[str, Any]:
    """The values of the named standard claims the account has; a verified flag only with its value."""
    values = {"preferred_username": profile.username, **{k: getattr(profile, k) for k in (
        "name", "given_name", "family_name", "locale", "updated_at", "email", "email_verified",
        "phone_number", "phone_number_verified")}}
    out = {n: values[n] for n in names if values.get(n) is not None}
    if not profile.email:
        out.pop("email_verified", None)
    if not profile.phone_number:
        out.pop("phone_number_verified", None)
    return out


def scope_claims(scopes: set[str]) -> list[str]:
    """The standard claims the scopes release (OIDC Core §5.4)."""
    return [claim for scope in scopes & SCOPE_CLAIMS.keys() for claim in SCOPE_CLAIMS[scope]]
