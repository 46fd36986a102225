"""The trust store: CAs (roots and intermediates, RSA, ECDSA and SM2), each with its profile.

Rows live in SQL (`yihao ca add|list|remove`); each worker reads them whole through a cache that
lives at most `max_age` seconds and is dropped at once when the version number in the ephemeral
store changes (a change made by another worker).
"""
from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import Engine, delete, select

from idp.crypto import random_token
from idp.models import TrustedCa
from idp.pki.signatures import ALGORITHMS, issued_by, key_algorithm
from idp.store.ephemeral import EphemeralStore

VERSION_KEY = "ca:version"
REVOCATION = ("crl", "none")
# Where the credit code or ID number may sit (reference: GM/T 0015-2012 and -2023, legacy arcs,
# subject attributes). A profile lists the ones its CA uses; empty means every one of these.
IDENTITY_FIELDS = (
    "ext:1.2.156.10260.4.4",        # GM/T 0015-2023 unified social credit code
    "ext:1.2.156.10260.4.1.4",      # GM/T 0015-2012 organisation code (often the credit code now)
    "ext:1.2.156.10260.4.1.3",      # business registration number
    "ext:1.2.156.10260.4.1.5",      # tax number
    "ext:1.2.156.10260.4.1.1.1",    # GM/T 0015-2023 resident ID card number
    "ext:1.2.156.10260.4.1.1",      # GM/T 0015-2012 personal ID number
    "ext:1.2.86.11.7.1", "ext:1.2.86.11.7.2", "ext:1.2.86.11.7.3", "ext:1.2.86.11.7.4", "ext:1.2.86.11.7.5",
    "ext:1.2.156.11.7.1", "ext:1.2.156.11.7.2", "ext:1.2.156.11.7.3", "ext:1.2.156.11.7.4", "ext:1.2.156.11.7.5",
    "subject:2.5.4.97",             # organizationIdentifier
    "subject:2.5.4.5",              # serialNumber
    "subject:2.5.4.11",             # OU
    "subject:2.5.4.3",              # CN (some CAs pack the code into it)
)


class TrustStoreError(ValueError):
    """A CA certificate or profile that cannot be trusted as given; the message says why."""


@dataclass(frozen=True)
class CaProfile:
    """What a CA's certificates may be and where its identifiers sit.

    `revocation`: crl (checked; unknown status refuses) or none. `crl_max_stale`: seconds past a
    cached CRL's nextUpdate during which it still answers when no fresh one can be fetched (0: fail
    closed). `crl_urls`: used instead of the certificates' distribution points when given.
    `level`: the identity level (L1–L4) a certificate from this CA proves.
    """

    algorithms: tuple[str, ...] = ALGORITHMS
    identity_fields: tuple[str, ...] = ()
    revocation: str = "crl"
    crl_urls: tuple[str, ...] = ()
    crl_max_stale: int = 0
    level: int = 4

    def __post_init__(self) -> None:
        if not self.algorithms or set(self.algorithms) - set(ALGORITHMS):
            raise TrustStoreError(f"algorithms: a non-empty subset of {', '.join(ALGORITHMS)}")
        for name in self.identity_fields:
            kind, _, oid = name.partition(":")
            if kind not in ("ext", "subject") or not all(p.isdigit() for p in oid.split(".")):
                raise TrustStoreError(f"identity field {name!r}: ext:OID or subject:OID")
        if self.revocation not in REVOCATION:
            raise TrustStoreError(f"revocation: one of {' | '.join(REVOCATION)}")
        if any(not url.startswith(("http://", "https://")) for url in self.crl_urls):
            raise TrustStoreError("crl_urls: http(s) URLs")
        if not 0 <= self.crl_max_stale <= 7 * 86400:
            raise TrustStoreError("crl_max_stale: 0 to 604800 seconds")
        if self.level not in (1, 2, 3, 4):
            raise TrustStoreError("level: 1 to 4")

    @property
    def fields(self) -> tuple[str, ...]:
        return self.identity_fields or IDENTITY_FIELDS

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CaProfile:
        known = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass(frozen=True)
class Anchor:
    id: str
    name: str
    certificate: x509.Certificate = field(repr=False)
    fingerprint: str
    profile: CaProfile

    @property
    def subject(self) -> str:
        return self.certificate.subject.rfc4514_string()


def fingerprint(certificate: x509.Certificate) -> str:
    """SHA-256 of the DER, hex (what bindings and `cnf.x5t#S256` are keyed by)."""
    return certificate.fingerprint(hashes.SHA256()).hex()


def certificate_der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(Encoding.DER)


def load_certificate(data: bytes) -> x509.Certificate:
    """A certificate from PEM or DER bytes; ValueError when it is neither."""
    if b"-----BEGIN" in data:
        return x509.load_pem_x509_certificate(data)
    return x509.load_der_x509_certificate(data)


class TrustStore:
    def __init__(self, engine: Engine, store: EphemeralStore, *, max_age: float = 10.0) -> None:
        self._engine = engine
        self._store = store
        self._max_age = max_age
        self._lock = threading.Lock()
        self._cached: tuple[float, bytes | None, tuple[Anchor, ...]] | None = None

    def add(self, name: str, data: bytes, profile: CaProfile) -> Anchor:
        """Trust a CA certificate (PEM or DER) under `name` with `profile`."""
        try:
            certificate = load_certificate(data)
        except ValueError:
            raise TrustStoreError("not a PEM or DER X.509 certificate") from None
        _check_ca(certificate)
        if not name.strip() or len(name) > 128:
            raise TrustStoreError("name: 1 to 128 characters")
        row = TrustedCa(name=name.strip(), subject=certificate.subject.rfc4514_string()[:1024],
                        fingerprint=fingerprint(certificate), certificate=certificate_der(certificate),
                        profile=profile.to_json())
        with self._engine.begin() as connection:
            taken = connection.execute(select(TrustedCa.name).where(
                (TrustedCa.name == row.name) | (TrustedCa.fingerprint == row.fingerprint))).first()
            if taken is not None:
                raise TrustStoreError(f"already trusted as {taken[0]!r}")
            connection.execute(TrustedCa.__table__.insert().values(**row.model_dump()))  # type: ignore[attr-defined]
        self._changed()
        return Anchor(row.id, row.name, certificate, row.fingerprint, profile)

    def remove(self, name: str) -> bool:
        with self._engine.begin() as connection:
            gone = connection.execute(delete(TrustedCa).where(TrustedCa.name == name)).rowcount
        self._changed()
        return bool(gone)

    def anchors(self) -> tuple[Anchor, ...]:
        """Every trusted CA, from a cache at most `max_age` old and dropped on a version change."""
        now = time.monotonic()
        cached = self._cached
        if cached is not None and now - cached[0] < 1.0:
            return cached[2]
        version = self._store.get(VERSION_KEY)
        if cached is not None and cached[1] == version and now - cached[0] < self._max_age:
            return cached[2]
        with self._engine.connect() as connection:
            rows = connection.execute(select(TrustedCa).order_by(TrustedCa.name)).all()
        anchors = tuple(Anchor(r.id, r.name, x509.load_der_x509_certificate(r.certificate), r.fingerprint,
                               CaProfile.from_json(r.profile)) for r in rows)
        with self._lock:
            self._cached = (now, version, anchors)
        return anchors

    def _changed(self) -> None:
        self._store.put(VERSION_KEY, random_token(8).encode(), ttl=30 * 86400)
        with self._lock:
            self._cached = None


def _check_ca(certificate: x509.Certificate) -> None:
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        raise TrustStoreError("not a CA certificate (no basicConstraints)") from None
    if not constraints.ca:
        raise TrustStoreError("not a CA certificate (basicConstraints cA is false)")
    if key_algorithm(certificate) is None:
        raise TrustStoreError("key algorithm not supported (RSA ≥ 2048, ECDSA P-256/P-384, SM2)")
    if certificate.issuer == certificate.subject and not issued_by(certificate, certificate):
        raise TrustStoreError("self-signed certificate whose signature does not verify")
