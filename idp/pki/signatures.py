"""Verify a signature made with a certificate's key: RSA (PKCS#1 v1.5 or PSS, SHA-256), ECDSA
(P-256 / P-384, DER or raw r‖s) and SM2-with-SM3 (standard signer ID, DER or raw r‖s)."""
from __future__ import annotations

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from idp.pki import sm2

ALGORITHMS = ("rsa", "ecdsa", "sm2")
_EC_HASH = {"secp256r1": hashes.SHA256, "secp384r1": hashes.SHA384}


def key_algorithm(certificate: x509.Certificate) -> str | None:
    """rsa | ecdsa | sm2 for the keys we verify; None for anything else."""
    if sm2.is_sm2(certificate):
        return "sm2"
    try:
        key = certificate.public_key()
    except (UnsupportedAlgorithm, ValueError):
        return None
    if isinstance(key, rsa.RSAPublicKey):
        return "rsa" if key.key_size >= 2048 else None
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name in _EC_HASH:
        return "ecdsa"
    return None


def verify(certificate: x509.Certificate, data: bytes, signature: bytes) -> bool:
    """True when `signature` over exactly `data` was made with the certificate's key."""
    algorithm = key_algorithm(certificate)
    if algorithm == "sm2":
        return sm2.verify(sm2.public_point(certificate), data, signature)
    key = certificate.public_key()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            return _rsa(key, data, signature)
        if isinstance(key, ec.EllipticCurvePublicKey) and algorithm == "ecdsa":
            size = (key.curve.key_size + 7) // 8
            key.verify(_dss(signature, size), data, ec.ECDSA(_EC_HASH[key.curve.name]()))
            return True
    except (InvalidSignature, ValueError):
        return False
    return False


def _rsa(key: rsa.RSAPublicKey, data: bytes, signature: bytes) -> bool:
    # USB-key agents sign PKCS#1 v1.5 (most) or PSS; both over SHA-256.
    for pad in (padding.PKCS1v15(), padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.AUTO)):
        try:
            key.verify(signature, data, pad, hashes.SHA256())
            return True
        except InvalidSignature:
            continue
    return False


def _dss(signature: bytes, size: int) -> bytes:
    if sm2.is_der_pair(signature):
        return signature
    if len(signature) != 2 * size:
        raise ValueError("signature is neither DER nor raw r‖s")
    return encode_dss_signature(int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big"))


def issued_by(child: x509.Certificate, issuer: x509.Certificate) -> bool:
    """The issuer's key signed the child's TBS (names are compared by the caller)."""
    if sm2.is_sm2(issuer):
        return (child.signature_algorithm_oid.dotted_string == sm2.SIGNATURE_OID
                and sm2.verify(sm2.public_point(issuer), child.tbs_certificate_bytes, child.signature))
    try:
        child.verify_directly_issued_by(issuer)
        return True
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False


def crl_signed_by(crl: x509.CertificateRevocationList, issuer: x509.Certificate) -> bool:
    if sm2.is_sm2(issuer):
        return (crl.signature_algorithm_oid.dotted_string == sm2.SIGNATURE_OID
                and sm2.verify(sm2.public_point(issuer), crl.tbs_certlist_bytes, crl.signature))
    try:
        return crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
    except (TypeError, ValueError, UnsupportedAlgorithm):
        return False
