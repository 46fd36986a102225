"""Compact JWS signing and verification over prepared jwcrypto keys."""
from __future__ import annotations

import base64
import hashlib
import json
from typing import Any, Callable

from jwcrypto import jwk, jws
from jwcrypto.common import JWException

_HALF_HASH = {"RS256": hashlib.sha256, "ES256": hashlib.sha256, "PS256": hashlib.sha256, "EdDSA": hashlib.sha512}


class InvalidJws(ValueError):
    """A token that is malformed, signed by an unknown key, or whose signature does not verify."""


def sign(claims: dict[str, Any], key: jwk.JWK, typ: str = "JWT") -> str:
    alg = key.get("alg")
    token = jws.JWS(json.dumps(claims, separators=(",", ":"), ensure_ascii=False).encode())
    token.add_signature(key, alg=alg, protected=json.dumps({"alg": alg, "kid": key.get("kid"), "typ": typ}))
    return token.serialize(compact=True)


def header(token: str) -> dict[str, Any]:
    try:
        first = token.split(".", 1)[0]
        value = json.loads(base64.urlsafe_b64decode(first + "=" * (-len(first) % 4)))
    except (ValueError, UnicodeDecodeError):
        raise InvalidJws("the token is not a compact JWS") from None
    if not isinstance(value, dict):
        raise InvalidJws("the token header is not a JSON object")
    return value


def verify(token: str, find_key: Callable[[str], jwk.JWK | None], algorithms: tuple[str, ...],
           typ: str | None = None) -> dict[str, Any]:
    """The claims of `token` if a published key signed it with an allowed algorithm."""
    if not isinstance(token, str) or token.count(".") != 2 or len(token) > 16384:
        raise InvalidJws("the token is not a compact JWS")
    protected = header(token)
    alg, kid = protected.get("alg"), protected.get("kid")
    if alg not in algorithms:
        raise InvalidJws("the token's algorithm is not accepted")
    if typ is not None and str(protected.get("typ", "")).lower() not in (typ.lower(), f"application/{typ.lower()}"):
        raise InvalidJws("the token's type is not accepted")
    key = find_key(kid) if isinstance(kid, str) else None
    if key is None or key.get("alg") != alg:
        raise InvalidJws("the token was not signed by a published key")
    try:
        parsed = jws.JWS()
        parsed.deserialize(token)
        parsed.verify(key, alg=alg)
        claims = json.loads(parsed.payload)
    except (JWException, ValueError, TypeError):
        raise InvalidJws("the token signature does not verify") from None
    if not isinstance(claims, dict):
        raise InvalidJws("the token's payload is not a JSON object")
    return claims


def half_hash(value: str, alg: str) -> str:
    """at_hash / c_hash: the left half of the hash of the ASCII value (OIDC Core §3.1.3.6)."""
    full = _HALF_HASH[alg](value.encode("ascii")).digest()
    return base64.urlsafe_b64encode(full[: len(full) // 2]).rstrip(b"=").decode("ascii")
