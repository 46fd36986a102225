"""Revocation by CRL: fetched from the distribution points (or the profile's URLs) with a timeout
and a size limit, signature-checked against the issuer, and cached in the ephemeral store until
`nextUpdate` (plus the profile's stale allowance) so every worker shares one fetch.

Status unknown — no source, nothing fetchable, a CRL that does not verify — refuses the login
(fail closed) unless a cached CRL is within the CA's `crl_max_stale` seconds past its nextUpdate.
Delta and indirect CRLs are not handled: such a certificate's status is unknown.
"""
from __future__ import annotations

import hashlib
import logging
import time
from typing import Callable, Protocol

import httpx
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from idp.pki.errors import Refused
from idp.pki.signatures import crl_signed_by
from idp.pki.truststore import CaProfile, fingerprint
from idp.store.ephemeral import EphemeralStore

log = logging.getLogger("yihao.crl")
NO_NEXT_UPDATE_TTL = 3600  # RFC 5280 requires nextUpdate; a CRL without one is kept an hour


class CrlUnavailable(Exception):
    """The CRL could not be fetched (transport error, status, size, timeout)."""


class CrlSource(Protocol):
    def fetch(self, url: str) -> bytes:
        """The CRL's bytes (DER or PEM); CrlUnavailable when it cannot be had."""
        ...


class HttpCrlSource:
    """HTTP(S) fetches with a total timeout and a size cap (a CRL is public and signed: plain HTTP
    is its usual transport, RFC 5280 §4.2.1.13)."""

    def __init__(self, timeout: float, max_bytes: int) -> None:
        self._client = httpx.Client(timeout=timeout, follow_redirects=False)
        self._max = max_bytes

    def fetch(self, url: str) -> bytes:
        try:
            with self._client.stream("GET", url) as response:
                if response.status_code != 200:
                    raise CrlUnavailable(f"http_{response.status_code}")
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > self._max:
                        raise CrlUnavailable("too_large")
                return bytes(body)
        except httpx.HTTPError as exc:
            raise CrlUnavailable(type(exc).__name__) from None


class Revocation:
    def __init__(self, store: EphemeralStore, source: CrlSource, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._source = source
        self._clock = clock

    def check(self, certificate: x509.Certificate, issuer: x509.Certificate, profile: CaProfile) -> None:
        """Refused('revoked') if `issuer`'s CRL lists the certificate; Refused('revocation_unknown')
        when no usable CRL can be had."""
        if profile.revocation == "none":
            return
        urls = profile.crl_urls or distribution_points(certificate)
        if not urls:
            raise Refused("revocation_unknown", "no CRL source")
        for url in urls:
            crl = self._crl(url, issuer, profile.crl_max_stale)
            if crl is None:
                continue
            if crl.get_revoked_certificate_by_serial_number(certificate.serial_number) is not None:
                raise Refused("revoked", f"serial {certificate.serial_number:x}")
            return
        raise Refused("revocation_unknown", "no usable CRL")

    def _crl(self, url: str, issuer: x509.Certificate, max_stale: int) -> x509.CertificateRevocationList | None:
        key = "crl:" + hashlib.sha256(f"{url}|{fingerprint(issuer)}".encode()).hexdigest()[:40]
        now = self._clock()
        cached = self._store.get(key)
        crl = x509.load_der_x509_crl(cached) if cached else None
        if crl is not None and now < _next_update(crl):
            return crl  # signature checked before it was cached
        try:
            fresh = self._fetch(url, issuer, now)
        except CrlUnavailable as exc:
            log.warning("CRL %s unavailable: %s", url, exc)
            fresh = None
        if fresh is not None:
            raw, crl = fresh
            ttl = max(_next_update(crl) - now, 0) + max_stale
            if ttl > 0:
                self._store.put(key, raw, ttl=ttl)
            if now < _next_update(crl):
                return crl
        # Stale: only within the profile's allowance (the store entry expires at its end anyway).
        if crl is not None and now < _next_update(crl) + max_stale:
            return crl
        return None

    def _fetch(self, url: str, issuer: x509.Certificate, now: float) -> tuple[bytes, x509.CertificateRevocationList]:
        data = self._source.fetch(url)
        try:
            crl = x509.load_pem_x509_crl(data) if b"-----BEGIN" in data else x509.load_der_x509_crl(data)
        except ValueError:
            raise CrlUnavailable("not a CRL") from None
        if crl.issuer.public_bytes() != issuer.subject.public_bytes() or not crl_signed_by(crl, issuer):
            raise CrlUnavailable("not signed by the issuer")
        if crl.last_update_utc.timestamp() > now + 300:
            raise CrlUnavailable("thisUpdate in the future")
        return crl.public_bytes(Encoding.DER), crl


def distribution_points(certificate: x509.Certificate) -> tuple[str, ...]:
    """The http(s) URIs of the certificate's CRL distribution points (LDAP ones are skipped)."""
    try:
        points = certificate.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        return ()
    return tuple(name.value for point in points for name in (point.full_name or ())
                 if isinstance(name, x509.UniformResourceIdentifier)
                 and name.value.startswith(("http://", "https://")))


def _next_update(crl: x509.CertificateRevocationList) -> float:
    when = crl.next_update_utc
    return crl.last_update_utc.timestamp() + NO_NEXT_UPDATE_TTL if when is None else when.timestamp()
