"""Certification path validation (RFC 5280 §6, the parts a login needs), one code path for RSA,
ECDSA and SM2: issuer name and key identifier match, each hop's signature, validity, basic
constraints, path length, key usage, and no unrecognised critical extension."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cryptography import x509

from idp.pki.errors import Refused
from idp.pki.signatures import issued_by, key_algorithm
from idp.pki.truststore import Anchor

MAX_DEPTH = 6
_HANDLED = {x509.BasicConstraints, x509.KeyUsage, x509.ExtendedKeyUsage, x509.SubjectKeyIdentifier,
            x509.AuthorityKeyIdentifier, x509.CRLDistributionPoints, x509.CertificatePolicies,
            x509.SubjectAlternativeName, x509.AuthorityInformationAccess}


@dataclass(frozen=True)
class ValidatedPath:
    certificates: tuple[x509.Certificate, ...]  # the leaf first, the trusted CA's certificate last
    anchor: Anchor

    @property
    def leaf(self) -> x509.Certificate:
        return self.certificates[0]


def validate(leaf: x509.Certificate, supplied: list[x509.Certificate], anchors: tuple[Anchor, ...],
             now: datetime) -> ValidatedPath:
    """The path from `leaf` to a trusted CA, through `supplied` intermediates if needed; Refused otherwise."""
    _check_time(leaf, now, "expired", "not_yet_valid")
    _check_leaf_usage(leaf)
    _check_critical(leaf)
    path = [leaf]
    while len(path) <= MAX_DEPTH:
        child = path[-1]
        anchor = next((a for a in anchors if _hop(child, a.certificate, len(path))), None)
        if anchor is not None:
            _check_time(anchor.certificate, now, "chain_invalid", "chain_invalid")
            if key_algorithm(leaf) not in anchor.profile.algorithms:
                raise Refused("algorithm_not_allowed", f"{key_algorithm(leaf)} not allowed by {anchor.name}")
            return ValidatedPath(tuple(path) + (anchor.certificate,), anchor)
        issuer = next((c for c in supplied if c not in path and _hop(child, c, len(path))), None)
        if issuer is None:
            raise Refused("untrusted_ca", child.issuer.rfc4514_string()[:200])
        _check_time(issuer, now, "chain_invalid", "chain_invalid")
        _check_critical(issuer)
        path.append(issuer)
    raise Refused("chain_invalid", "path too long")


def _hop(child: x509.Certificate, issuer: x509.Certificate, below: int) -> bool:
    """True when `issuer` issued `child`; Refused when it is named as the issuer but may not issue."""
    if child.issuer.public_bytes() != issuer.subject.public_bytes():
        return False
    aki = _extension(child, x509.AuthorityKeyIdentifier)
    ski = _extension(issuer, x509.SubjectKeyIdentifier)
    if aki is not None and aki.key_identifier and ski is not None and aki.key_identifier != ski.digest:
        return False  # same name, another key (a renewed CA): not this one
    if not issued_by(child, issuer):
        return False
    constraints = _extension(issuer, x509.BasicConstraints)
    if constraints is None or not constraints.ca:
        raise Refused("chain_invalid", "issuer is not a CA")
    # RFC 5280 §4.2.1.9: pathLenConstraint counts the intermediate CAs below the issuer.
    if constraints.path_length is not None and below - 1 > constraints.path_length:
        raise Refused("chain_invalid", "path length constraint exceeded")
    usage = _extension(issuer, x509.KeyUsage)
    if usage is not None and not usage.key_cert_sign:
        raise Refused("chain_invalid", "issuer key may not sign certificates")
    return True


def _check_time(certificate: x509.Certificate, now: datetime, after: str, before: str) -> None:
    if now > certificate.not_valid_after_utc:
        raise Refused(after, "certificate expired")
    if now < certificate.not_valid_before_utc:
        raise Refused(before, "certificate not yet valid")


def _check_leaf_usage(leaf: x509.Certificate) -> None:
    """A login signature needs digitalSignature or nonRepudiation (SM2 keys carry an encryption
    certificate too: its keyUsage lacks both, so it is refused here)."""
    usage = _extension(leaf, x509.KeyUsage)
    if usage is not None and not (usage.digital_signature or usage.content_commitment):
        raise Refused("key_usage", "neither digitalSignature nor nonRepudiation")
    constraints = _extension(leaf, x509.BasicConstraints)
    if constraints is not None and constraints.ca:
        raise Refused("key_usage", "a CA certificate cannot log in")


def _check_critical(certificate: x509.Certificate) -> None:
    # RFC 5280 §4.2: a certificate with a critical extension we do not process must be rejected.
    for extension in certificate.extensions:
        if extension.critical and type(extension.value) not in _HANDLED:
            raise Refused("chain_invalid", f"unrecognised critical extension {extension.oid.dotted_string}")


def _extension(certificate: x509.Certificate, kind: type) -> object | None:
    try:
        return certificate.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None
