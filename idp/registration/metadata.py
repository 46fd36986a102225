"""Client metadata of a registration request (RFC 7591 §2, OIDC Registration §2), checked by a table.

Each understood field has a `Rule`: how to check and normalise its value, which error names a bad
value, and the `validated_columns` keyword it fills. Cross-field checks run afterwards, in order.
Fields the table does not know are ignored, as RFC 7591 §2 requires. A feature adds its fields by
adding rules, e.g.::

    RULES["jwks_uri"] = Rule(https_uri)           # stored in the `jwks_uri` column
    CROSS_CHECKS.append(jwks_needed_for_private_key_jwt)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from idp.client_keys import ASYMMETRIC_ALGS, HMAC_ALGS, REQUEST_OBJECT_ALGS, parse_jwks
from idp.clients import (APPLICATION_TYPES, AUTH_METHODS, GRANT_TYPES, ID_TOKEN_ALGS, SUPPORTED_SCOPES,
                         ClientInputError, validate_logout_uri, validate_redirect_uri, validate_request_uri)
from idp.egress import Egress, EgressError
from idp.untrusted import parse_json

INVALID_METADATA = "invalid_client_metadata"
INVALID_REDIRECT = "invalid_redirect_uri"
SECTOR_MAX_BYTES = 64 * 1024
SECTOR_TIMEOUT = 3.0


class RegistrationError(Exception):
    """A refusal by its RFC 7591 §3.2.2 name, with a description a developer can act on."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error, self.description = error, description


@dataclass(frozen=True)
class Policy:
    """What this registration may do: where it may make the provider call, and public subjects."""

    egress: Egress
    allow_public_subject: bool = False


Metadata = dict[str, Any]
Check = Callable[[str, Any, Metadata], Any]  # (field name, raw value, fields checked so far) -> value


@dataclass(frozen=True)
class Rule:
    check: Check
    error: str = INVALID_METADATA
    column: str | None = ""  # the validated_columns keyword; "" = the field's own name, None = not stored

    def keyword(self, name: str) -> str | None:
        return name if self.column == "" else self.column


# -- value checks ---------------------------------------------------------------------------------
def string(name: str, value: Any, _: Metadata) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ClientInputError(f"{name} must be a non-empty string")
    if len(value) > 255:
        raise ClientInputError(f"{name} must be at most 255 characters")
    return value.strip()


def strings(name: str, value: Any, _: Metadata) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ClientInputError(f"{name} must be an array of non-empty strings")
    if len(value) > 20:
        raise ClientInputError(f"{name} may hold at most 20 values")
    return list(dict.fromkeys(value))


def boolean(name: str, value: Any, _: Metadata) -> bool:
    if not isinstance(value, bool):
        raise ClientInputError(f"{name} must be true or false")
    return value


def one_of(*allowed: str) -> Check:
    def check(name: str, value: Any, got: Metadata) -> str:
        if string(name, value, got) not in allowed:
            raise ClientInputError(f"{name} {value!r} is not supported (supported: {', '.join(allowed)})")
        return str(value)

    return check


def all_of(allowed: tuple[str, ...] | list[str], what: str) -> Check:
    def check(name: str, value: Any, got: Metadata) -> list[str]:
        values = strings(name, value, got)
        for v in values:
            if v not in allowed:
                raise ClientInputError(f"{what} {v!r} is not supported (supported: {', '.join(allowed)})")
        return values

    return check


def https_uri(name: str, value: Any, _: Metadata) -> str:
    if not isinstance(value, str) or not value or len(value) > 1024:
        raise ClientInputError(f"{name} must be a URI of at most 1024 characters")
    return validate_logout_uri(name, value)


def redirect_uris(name: str, value: Any, got: Metadata) -> list[str]:
    uris = strings(name, value, got)
    singular = name[:-1]  # redirect_uri, post_logout_redirect_uri
    return [validate_redirect_uri(uri, got.get("application_type", "web"), singular) for uri in uris]


def scope(name: str, value: Any, got: Metadata) -> str:
    scopes = string(name, value, got).split()
    for s in scopes:
        if s not in SUPPORTED_SCOPES:
            raise ClientInputError(f"scope {s!r} is not supported (supported: {' '.join(SUPPORTED_SCOPES)})")
    if "openid" not in scopes:
        raise ClientInputError("scope must include openid")
    return " ".join(dict.fromkeys(scopes))


def signing_alg(name: str, value: Any, got: Metadata) -> str:
    if value == "none":
        raise ClientInputError(f"{name} none is not supported: this provider always signs "
                               f"(supported: {', '.join(ID_TOKEN_ALGS)})")
    return one_of(*ID_TOKEN_ALGS)(name, value, got)


def unsupported(why: str) -> Check:
    def check(name: str, value: Any, _: Metadata) -> Any:
        raise ClientInputError(f"{name} is not supported: {why}")

    return check


def contacts(name: str, value: Any, got: Metadata) -> list[str]:
    values = strings(name, value, got)
    for v in values:
        if "@" not in v or len(v) > 255 or any(c.isspace() for c in v):
            raise ClientInputError(f"contacts {v!r} is not an e-mail address")
    return values


def jwks(name: str, value: Any, _: Metadata) -> dict[str, Any]:
    try:
        parse_jwks(value)
    except ValueError as exc:
        raise ClientInputError(f"{name} {exc}") from None
    return value


def request_uris(name: str, value: Any, got: Metadata) -> list[str]:
    return [validate_request_uri(uri) for uri in strings(name, value, got)]


NO_ENCRYPTION = "this provider does not encrypt"
RULES: dict[str, Rule] = {
    # Order matters: a rule may read the fields checked before it (redirect URIs read application_type).
    "application_type": Rule(one_of(*APPLICATION_TYPES)),
    "client_name": Rule(string, column="name"),
    "redirect_uris": Rule(redirect_uris, INVALID_REDIRECT),
    "post_logout_redirect_uris": Rule(redirect_uris),
    "grant_types": Rule(all_of(GRANT_TYPES, "grant_type")),
    "response_types": Rule(all_of(("code",), "response_type"), column=None),
    "token_endpoint_auth_method": Rule(lambda n, v, g: one_of(*AUTH_METHODS)(n, v, g)),  # read at call time
    "scope": Rule(scope),
    "subject_type": Rule(one_of("pairwise", "public")),
    "sector_identifier_uri": Rule(https_uri),
    "id_token_signed_response_alg": Rule(signing_alg),
    "userinfo_signed_response_alg": Rule(signing_alg),
    "client_uri": Rule(https_uri),
    "logo_uri": Rule(https_uri),
    "policy_uri": Rule(https_uri),
    "tos_uri": Rule(https_uri),
    "contacts": Rule(contacts),
    "backchannel_logout_uri": Rule(https_uri),
    "backchannel_logout_session_required": Rule(boolean),
    "frontchannel_logout_uri": Rule(https_uri),
    "frontchannel_logout_session_required": Rule(boolean),
    "dpop_bound_access_tokens": Rule(boolean),  # RFC 9449 §5.2
    "id_token_encrypted_response_alg": Rule(unsupported(NO_ENCRYPTION + " ID tokens")),
    "id_token_encrypted_response_enc": Rule(unsupported(NO_ENCRYPTION + " ID tokens")),
    "userinfo_encrypted_response_alg": Rule(unsupported(NO_ENCRYPTION + " userinfo responses")),
    "userinfo_encrypted_response_enc": Rule(unsupported(NO_ENCRYPTION + " userinfo responses")),
    "request_object_encryption_alg": Rule(unsupported("encrypted request objects are not accepted")),
    "request_object_encryption_enc": Rule(unsupported("encrypted request objects are not accepted")),
    # RFC 7523 client authentication, RFC 9101 request objects, RFC 9126 pushed requests
    "jwks": Rule(jwks),
    "jwks_uri": Rule(https_uri),
    "token_endpoint_auth_signing_alg": Rule(one_of(*ASYMMETRIC_ALGS, *HMAC_ALGS)),
    "request_object_signing_alg": Rule(one_of(*REQUEST_OBJECT_ALGS)),
    "request_uris": Rule(request_uris),
    "require_pushed_authorization_requests": Rule(boolean),
}


# -- cross-field checks ---------------------------------------------------------------------------
def code_needs_its_grant(got: Metadata, policy: Policy) -> None:
    # RFC 7591 §2.1: response_type code goes with grant_type authorization_code
    if "authorization_code" not in got.get("grant_types", ["authorization_code"]):
        raise RegistrationError(INVALID_METADATA, "grant_types must include authorization_code: "
                                "response_types code needs it (RFC 7591 §2.1)")


def redirect_uris_required(got: Metadata, policy: Policy) -> None:
    if not got.get("redirect_uris"):
        raise RegistrationError(INVALID_REDIRECT, "redirect_uris is required")


def public_subject_needs_approval(got: Metadata, policy: Policy) -> None:
    if got.get("subject_type") == "public" and not policy.allow_public_subject:
        raise RegistrationError(INVALID_METADATA, "subject_type public needs an administrator's approval "
                                "(an initial access token issued with --public-subject); use pairwise")


def sector_lists_redirect_uris(got: Metadata, policy: Policy) -> None:
    """OIDC Core §8.1: the sector document is a JSON array holding every redirect URI."""
    uri = got.get("sector_identifier_uri")
    if not uri:
        return
    try:
        listed = parse_json(policy.egress.fetch("sector_identifier_uri", uri, max_bytes=SECTOR_MAX_BYTES,
                                                timeout=SECTOR_TIMEOUT))
    except EgressError as exc:
        raise RegistrationError(INVALID_METADATA, str(exc)) from None
    except ValueError:
        raise RegistrationError(INVALID_METADATA, f"sector_identifier_uri {uri!r} is not JSON") from None
    if not isinstance(listed, list) or not all(isinstance(item, str) for item in listed):
        raise RegistrationError(INVALID_METADATA, f"sector_identifier_uri {uri!r} must hold a JSON array of URIs")
    for redirect in got.get("redirect_uris", []):
        if redirect not in listed:
            raise RegistrationError(INVALID_METADATA,
                                    f"sector_identifier_uri {uri!r} does not list redirect_uri {redirect!r}")


def frontchannel_matches_a_redirect(got: Metadata, policy: Policy) -> None:
    # Front-Channel Logout §2: scheme, host and port of a registered redirect URI
    uri = got.get("frontchannel_logout_uri")
    if uri and _origin(uri) not in {_origin(r) for r in got.get("redirect_uris", [])}:
        raise RegistrationError(INVALID_METADATA, f"frontchannel_logout_uri {uri!r} must have the scheme, host "
                                "and port of a redirect_uri")


def backchannel_passes_egress(got: Metadata, policy: Policy) -> None:
    """URLs the provider will call for this client: back-channel logout, its keys, its request objects."""
    for name in ("backchannel_logout_uri", "jwks_uri", "request_uris"):
        value = got.get(name)
        for uri in value if isinstance(value, list) else [value] if value else []:
            try:
                policy.egress.check(name, uri, must_resolve=False)  # the logout URI is checked again at delivery
            except EgressError as exc:
                raise RegistrationError(INVALID_METADATA, str(exc)) from None


def _origin(uri: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"


CROSS_CHECKS: list[Callable[[Metadata, Policy], None]] = [
    code_needs_its_grant, redirect_uris_required, public_subject_needs_approval, frontchannel_matches_a_redirect,
    backchannel_passes_egress, sector_lists_redirect_uris,  # last: it calls out
]


def parse(body: Any, policy: Policy) -> Metadata:
    """The checked metadata of a registration request, or RegistrationError naming the first problem."""
    if not isinstance(body, dict):
        raise RegistrationError(INVALID_METADATA, "the request body must be a JSON object sent as application/json")
    got: Metadata = {}
    for name, rule in RULES.items():
        if name not in body or body[name] is None:
            continue
        try:
            got[name] = rule.check(name, body[name], got)
        except ClientInputError as exc:
            raise RegistrationError(rule.error, str(exc)) from None
    for check in CROSS_CHECKS:
        check(got, policy)
    return got


def keywords(got: Metadata) -> dict[str, Any]:
    """The metadata as `ClientRegistry.create` / `update` keywords."""
    out = {rule.keyword(name): got[name] for name, rule in RULES.items() if name in got and rule.keyword(name)}
    out.setdefault("name", _default_name(got))
    out.setdefault("redirect_uris", [])
    out.setdefault("application_type", "web")  # OIDC Registration §2: the default, with its https rule
    return out


def _default_name(got: Metadata) -> str:
    from urllib.parse import urlsplit

    uris = got.get("redirect_uris") or [got.get("client_uri") or ""]
    return urlsplit(uris[0]).hostname or "unnamed client"
