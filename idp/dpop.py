"""DPoP (RFC 9449): proof-of-possession proofs, key thumbprints and server nonces.

A client signs a fresh proof JWT for every request with a key it keeps; tokens issued with a proof
are bound to that key (`cnf.jkt`), so a stolen token is useless without the key. Checks follow
RFC 9449 §4.3; the replay cache (`jti`) lives in the ephemeral store, so every worker sees it. Server
nonces (§8) are an HMAC over a time window with a key derived from the master key: any worker
issues and accepts them without sharing state.

    proof = dpop.check(headers.getlist("dpop"), "POST", issuer + "/token")
    proof.jkt  # RFC 7638 thumbprint of the proof's public key
"""
from __future__ import annotations

import hashlib
import hmac
import math
import time
import warnings
from dataclasses import dataclass
from typing import Any, Sequence
from urllib.parse import urlsplit

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jws import JWSRegistry
from joserfc.jwk import JWKRegistry

from idp.crypto import b64u, b64u_decode, digest, equal
from idp.store.ephemeral import EphemeralStore
from idp.untrusted import parse_json

# RFC 9449 §5.1: asymmetric algorithms only; advertised as dpop_signing_alg_values_supported
ALGS = ("ES256", "RS256", "PS256", "EdDSA")
KEY_TYPES = {"ES256": "EC", "RS256": "RSA", "PS256": "RSA", "EdDSA": "OKP"}
PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")
MAX_PROOF = 8192
NONCE_WINDOW = 300  # a nonce is accepted in its window and the next one: 5 to 10 minutes
FUTURE_LEEWAY = 5  # seconds a client's clock may run ahead

warnings.filterwarnings("ignore", message="EdDSA is deprecated")  # RFC 9864 names it; clients still use it


def _registry(alg: str) -> JWSRegistry:
    registry = JWSRegistry(algorithms=[alg])
    registry.max_header_length = 2048  # the header carries the public key: a 4096-bit RSA modulus fits
    registry.max_payload_length = MAX_PROOF
    return registry


REGISTRIES = {alg: _registry(alg) for alg in ALGS}


class DPoPError(Exception):
    """A refused proof: `invalid_dpop_proof` or `use_dpop_nonce` (RFC 9449 §§5, 7.1, 8, 12.2)."""

    def __init__(self, description: str, error: str = "invalid_dpop_proof") -> None:
        super().__init__(description)
        self.error, self.description = error, description


@dataclass(frozen=True)
class Proof:
    jkt: str  # RFC 7638 SHA-256 thumbprint of the proof's public key
    claims: dict[str, Any]


def access_token_hash(token: str) -> str:
    """`ath` (RFC 9449 §4.2): base64url SHA-256 of the access token's ASCII value."""
    return b64u(hashlib.sha256(token.encode("ascii", "replace")).digest())


def normalized_uri(uri: str) -> str:
    """scheme://host[:port]/path, lower-cased scheme and host, default port dropped, no query or fragment
    (RFC 9449 §4.3 step 9, with RFC 3986 §6.2.2 syntax-based normalisation)."""
    parts = urlsplit(uri)
    host = (parts.hostname or "").lower()
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    try:
        port = parts.port
    except ValueError:
        return ""
    netloc = host if port in (None, default) else f"{host}:{port}"
    if ":" in host:
        netloc = f"[{host}]" if port in (None, default) else f"[{host}]:{port}"
    return f"{parts.scheme.lower()}://{netloc}{parts.path or '/'}"


class DPoP:
    def __init__(self, store: EphemeralStore, nonce_key: bytes, *, max_age: int, require_nonce: bool) -> None:
        self._store = store
        self._nonce_key = nonce_key
        self.max_age = max_age
        self.require_nonce = require_nonce

    # -- nonces (RFC 9449 §8) ----------------------------------------------------------------
    def nonce(self, now: float | None = None) -> str:
        """The current server nonce; every worker computes the same one."""
        return self._nonce_for(int((time.time() if now is None else now) // NONCE_WINDOW))

    def _nonce_for(self, window: int) -> str:
        mac = hmac.new(self._nonce_key, str(window).encode(), hashlib.sha256).digest()
        return f"{window:x}.{b64u(mac[:16])}"

    def _nonce_valid(self, value: Any) -> bool:
        if not isinstance(value, str) or len(value) > 64:
            return False
        current = int(time.time() // NONCE_WINDOW)
        return any(equal(value, self._nonce_for(window)) for window in (current, current - 1))

    # -- proofs (RFC 9449 §4.3) ---------------------------------------------------------------
    def check(self, values: Sequence[str], method: str, uri: str, access_token: str | None = None) -> Proof | None:
        """The verified proof of a request, None when it carries none; raises DPoPError."""
        if not values:
            return None
        if len(values) > 1:
            raise DPoPError("more than one DPoP header")
        claims, jkt = self._verify(values[0])
        if claims.get("htm") != method:
            raise DPoPError(f"htm does not match the request method {method}")
        htu = claims.get("htu")
        if not isinstance(htu, str) or normalized_uri(htu) != normalized_uri(uri):
            raise DPoPError(f"htu does not match the request URI {uri}")
        iat = claims.get("iat")
        now = time.time()
        if not isinstance(iat, (int, float)) or isinstance(iat, bool) or not math.isfinite(iat):
            raise DPoPError("iat is missing or not a number")
        if iat < now - self.max_age or iat > now + FUTURE_LEEWAY:
            raise DPoPError("iat is outside the accepted window; check the client's clock")
        if access_token is not None:
            ath = claims.get("ath")
            if not isinstance(ath, str):
                raise DPoPError("ath is required when the proof accompanies an access token")
            if not equal(ath, access_token_hash(access_token)):
                raise DPoPError("ath does not match the access token")
        if self.require_nonce and "nonce" not in claims:
            raise DPoPError("a DPoP nonce is required; use the one in the DPoP-Nonce header", "use_dpop_nonce")
        if "nonce" in claims and not self._nonce_valid(claims["nonce"]):
            raise DPoPError("the DPoP nonce is not valid or has expired; use the one in the DPoP-Nonce header",
                            "use_dpop_nonce")
        # Last, so a proof refused above never spends its jti: one use per key, on every worker.
        if not self._store.add(f"dpop:jti:{digest(jkt + '|' + claims['jti'])}", b"1",
                               ttl=self.max_age + FUTURE_LEEWAY + 1):
            raise DPoPError("the proof was already used (jti replay)")
        return Proof(jkt, claims)

    def _verify(self, proof: str) -> tuple[dict[str, Any], str]:
        if not proof or len(proof) > MAX_PROOF or proof.count(".") != 2:
            raise DPoPError("the DPoP proof is not a compact JWS")
        try:
            protected = parse_json(b64u_decode(proof.split(".", 1)[0]))
        except ValueError:
            raise DPoPError("the DPoP proof header is not valid JSON") from None
        if not isinstance(protected, dict):
            raise DPoPError("the DPoP proof header is not a JSON object")
        if protected.get("typ") != "dpop+jwt":
            raise DPoPError("typ must be dpop+jwt")
        alg = protected.get("alg")
        if alg not in ALGS:
            raise DPoPError(f"alg must be one of {', '.join(ALGS)}")
        jwk = protected.get("jwk")
        if not isinstance(jwk, dict) or jwk.get("kty") != KEY_TYPES[alg]:
            raise DPoPError(f"jwk must be a public {KEY_TYPES[alg]} key for {alg}")
        if any(member in jwk for member in PRIVATE_MEMBERS):
            raise DPoPError("jwk must not contain a private key")
        if "crit" in protected:  # RFC 7515 §4.1.11: no extension is understood
            raise DPoPError("the DPoP proof uses a critical header extension")
        try:
            key = JWKRegistry.import_key(jwk)
            verified = jws.deserialize_compact(proof, key, registry=REGISTRIES[alg])
            claims = parse_json(verified.payload)
        except (JoseError, ValueError, TypeError):
            raise DPoPError("the DPoP proof signature does not verify") from None
        if not isinstance(claims, dict):
            raise DPoPError("the DPoP proof payload is not a JSON object")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not 0 < len(jti) <= 256:
            raise DPoPError("jti must be a unique string of at most 256 characters")
        return claims, key.thumbprint()

