"""The reference signing agent: stands in for a CA's USB-key agent, using key files, so the demo
and the tests run the real page ↔ agent protocol (README, "Certificate login").

It listens on loopback only, answers only pages from the origins it is told to trust (CORS), and
signs only a Yihao login challenge whose origin is the origin of the page asking — a page on
another site cannot get a signature it could relay.
"""
from __future__ import annotations

import base64
import hmac
import threading
from dataclasses import dataclass, field
from typing import Any

import gmssl_pyx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from idp.pki import sm2
from idp.pki.sm2issue import private_scalar
from idp.pki.signatures import key_algorithm
from idp.pki.truststore import certificate_der, fingerprint
from idp.untrusted import parse_json

PROTOCOL_VERSION = 1
MAX_PIN_TRIES = 5
ALGORITHM_NAMES = {"rsa": "rsa-pkcs1-sha256", "ecdsa": "ecdsa-sha256", "sm2": "sm2-sm3"}


@dataclass
class KeyEntry:
    """One certificate on the 'key': the signing certificate, its chain, and the private key."""

    certificate: x509.Certificate
    chain: list[x509.Certificate]
    private: Any  # an RSA/EC key object, or the 32-byte SM2 scalar
    algorithm: str

    @property
    def id(self) -> str:
        return fingerprint(self.certificate)[:16]

    def sign(self, data: bytes) -> bytes:
        if self.algorithm == "sm2":
            return bytes(gmssl_pyx.sm2_sign(self.private, sm2.public_point(self.certificate), data))
        if self.algorithm == "rsa":
            return bytes(self.private.sign(data, padding.PKCS1v15(), hashes.SHA256()))
        return bytes(self.private.sign(data, ec.ECDSA(hashes.SHA256())))


def load_entry(key_pem: bytes, certificates_pem: bytes) -> KeyEntry:
    """A key file (PKCS#8 PEM: RSA, EC or SM2) and its certificate followed by any intermediates."""
    certificates = x509.load_pem_x509_certificates(certificates_pem)
    leaf = certificates[0]
    algorithm = key_algorithm(leaf)
    if algorithm is None:
        raise ValueError("the certificate's key algorithm is not supported")
    private = private_scalar(key_pem) if algorithm == "sm2" else serialization.load_pem_private_key(key_pem, None)
    if algorithm != "sm2" and not isinstance(private, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        raise ValueError("the key is neither RSA nor EC")
    return KeyEntry(leaf, certificates[1:], private, algorithm)


@dataclass
class Agent:
    entries: list[KeyEntry]
    pin: str
    origins: tuple[str, ...]
    _tries: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/v1/certificates", self.certificates, methods=["GET", "OPTIONS"]),
                                 Route("/v1/sign", self.sign, methods=["POST", "OPTIONS"]),
                                 Route("/healthz", lambda r: Response("ok"), methods=["GET"])])

    def _cors(self, request: Request, status: int, body: dict[str, Any] | None) -> Response:
        origin = request.headers.get("origin")
        if origin not in self.origins:
            return JSONResponse({"error": "origin_not_allowed"}, status_code=403)
        headers = {"Access-Control-Allow-Origin": origin, "Vary": "Origin",
                   "Access-Control-Allow-Methods": "GET, POST", "Access-Control-Allow-Headers": "content-type",
                   # Chromium's Private Network Access: a public page calling a loopback service
                   "Access-Control-Allow-Private-Network": "true", "Cache-Control": "no-store"}
        if request.method == "OPTIONS":
            return Response(status_code=204, headers=headers)
        return JSONResponse(body, status_code=status, headers=headers)

    async def certificates(self, request: Request) -> Response:
        listed = [{"id": e.id, "subject": e.certificate.subject.rfc4514_string(),
                   "issuer": e.certificate.issuer.rfc4514_string(), "serial": f"{e.certificate.serial_number:x}",
                   "not_after": e.certificate.not_valid_after_utc.isoformat(), "algorithm": e.algorithm,
                   "certificate": _b64(certificate_der(e.certificate))} for e in self.entries]
        return self._cors(request, 200, {"version": PROTOCOL_VERSION, "certificates": listed})

    async def sign(self, request: Request) -> Response:
        if request.method == "OPTIONS":
            return self._cors(request, 204, None)
        try:
            asked = parse_json(await request.body())
            entry = next(e for e in self.entries if e.id == asked["id"])
            data, pin = str(asked["data"]), str(asked["pin"])
        except (ValueError, KeyError, TypeError, StopIteration):
            return self._cors(request, 400, {"error": "bad_request"})
        parts = data.split("|")
        if len(parts) != 4 or parts[0] != "yihao-login" or parts[2] != request.headers.get("origin"):
            return self._cors(request, 400, {"error": "challenge_origin_mismatch"})
        with self._lock:
            if self._tries >= MAX_PIN_TRIES:
                return self._cors(request, 423, {"error": "pin_locked"})
            if not hmac.compare_digest(pin.encode(), self.pin.encode()):
                self._tries += 1
                return self._cors(request, 403, {"error": "pin_incorrect", "tries_left": MAX_PIN_TRIES - self._tries})
            self._tries = 0
        return self._cors(request, 200, {"certificate": _b64(certificate_der(entry.certificate)),
                                         "chain": [_b64(certificate_der(c)) for c in entry.chain],
                                         "signature": _b64(entry.sign(data.encode())),
                                         "algorithm": ALGORITHM_NAMES[entry.algorithm]})


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
