"""Compact JWS signing and verification over prepared keys.

Keys are jwcrypto JWKs (generated, stored and published by idp.keys); the per-token work goes straight
to `cryptography` with the key object and the encoded header prepared once per key. jwcrypto's own
JWS path re-parses the key and the header on every call, which costs several times the ES256
signature itself.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
import threading
from typing import Any, Callable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from jwcrypto import jwk

from idp.untrusted import parse_json

_HALF_HASH = {"RS256": hashlib.sha256, "ES256": hashlib.sha256, "PS256": hashlib.sha256, "EdDSA": hashlib.sha512}
_SHA256 = hashes.SHA256()
_ECDSA = ec.ECDSA(_SHA256)
_PKCS1 = padding.PKCS1v15()
_PSS = padding.PSS(mgf=padding.MGF1(_SHA256), salt_length=padding.PSS.DIGEST_LENGTH)


class InvalidJws(ValueError):
    """A token that is malformed, signed by an unknown key, or whose signature does not verify."""


_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)  # json.dumps builds one per call


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class _Prepared:
    """One key's raw signing and verification callables and its encoded headers, built once."""

    def __init__(self, key: jwk.JWK) -> None:
        self.alg: str = key.get("alg")
        self.kid: str | None = key.get("kid")
        self._headers: dict[str, bytes] = {}
        private = key.has_private
        raw = key.get_op_key("sign") if private else None
        public = key.get_op_key("verify")
        alg = self.alg
        if alg == "ES256":
            self.sign_raw = (lambda m: _es256_jose(raw.sign(m, _ECDSA))) if raw is not None else None
            self.verify_raw = lambda m, s: public.verify(_es256_der(s), m, _ECDSA)
        elif alg == "RS256":
            self.sign_raw = (lambda m: raw.sign(m, _PKCS1, _SHA256)) if raw is not None else None
            self.verify_raw = lambda m, s: public.verify(s, m, _PKCS1, _SHA256)
        elif alg == "PS256":
            self.sign_raw = (lambda m: raw.sign(m, _PSS, _SHA256)) if raw is not None else None
            self.verify_raw = lambda m, s: public.verify(s, m, _PSS, _SHA256)
        elif alg == "EdDSA":
            self.sign_raw = (lambda m: raw.sign(m)) if raw is not None else None
            self.verify_raw = lambda m, s: public.verify(s, m)
        else:
            raise ValueError(f"unsupported JWS algorithm {alg!r}")

    def header(self, typ: str) -> bytes:
        encoded = self._headers.get(typ)
        if encoded is None:
            encoded = _b64(json.dumps({"alg": self.alg, "kid": self.kid, "typ": typ}).encode())
            self._headers[typ] = encoded
        return encoded


def _es256_jose(der: bytes) -> bytes:
    r, s = decode_dss_signature(der)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def _es256_der(signature: bytes) -> bytes:
    if len(signature) != 64:
        raise InvalidSignature()
    return encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))


# Keyed by the JWK object's id; the entry holds the key itself so the id cannot be reused while cached.
_prepared: dict[int, tuple[jwk.JWK, _Prepared]] = {}
_lock = threading.Lock()


def _prepare(key: jwk.JWK) -> _Prepared:
    hit = _prepared.get(id(key))
    if hit is not None and hit[0] is key:
        return hit[1]
    prepared = _Prepared(key)
    with _lock:
        if len(_prepared) > 256:  # key sets are small; a long-running process drops rotated-out keys
            _prepared.clear()
        _prepared[id(key)] = (key, prepared)
    return prepared


def sign(claims: dict[str, Any], key: jwk.JWK, typ: str = "JWT") -> str:
    prepared = _prepare(key)
    if prepared.sign_raw is None:
        raise ValueError("the key has no private part")
    payload = _b64(_COMPACT.encode(claims).encode())
    signing_input = prepared.header(typ) + b"." + payload
    return (signing_input + b"." + _b64(prepared.sign_raw(signing_input))).decode("ascii")


def header(token: str) -> dict[str, Any]:
    try:
        first = token.split(".", 1)[0]
        value = parse_json(_unb64(first))
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
    if "crit" in protected or protected.get("b64") is False:  # RFC 7515 §4.1.11: no extensions are understood
        raise InvalidJws("the token uses a critical header extension")
    key = find_key(kid) if isinstance(kid, str) else None
    if key is None or key.get("alg") != alg:
        raise InvalidJws("the token was not signed by a published key")
    head, payload, signature = token.split(".")
    try:
        if not token.isascii():
            raise ValueError("not base64url")
        _prepare(key).verify_raw(f"{head}.{payload}".encode("ascii"), _unb64(signature))
        claims = parse_json(_unb64(payload))
    except (InvalidSignature, ValueError, TypeError, binascii.Error):
        raise InvalidJws("the token signature does not verify") from None
    if not isinstance(claims, dict):
        raise InvalidJws("the token's payload is not a JSON object")
    return claims


def half_hash(value: str, alg: str) -> str:
    """at_hash / c_hash: the left half of the hash of the ASCII value (OIDC Core §3.1.3.6)."""
    full = _HALF_HASH[alg](value.encode("ascii")).digest()
    return base64.urlsafe_b64encode(full[: len(full) // 2]).rstrip(b"=").decode("ascii")
