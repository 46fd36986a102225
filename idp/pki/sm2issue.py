"""Issue SM2 certificates and CRLs in Python, for the demo's CAs (tests use the OpenSSL CLI).

`cryptography` builds the TBS with a P-256 stand-in key; the stand-in's curve OID and point are
replaced by the SM2 ones (same lengths), the signature algorithm becomes SM2-with-SM3 (same
length), and GmSSL signs the result with the standard signer ID.
"""
from __future__ import annotations

import base64
import hashlib

import gmssl_pyx
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from idp.pki import der
from idp.pki.sm2 import CURVE_OID, EC_PUBLIC_KEY_OID, SIGNATURE_OID, oid_bytes

_P256, _ECDSA_SHA256 = oid_bytes("1.2.840.10045.3.1.7"), oid_bytes("1.2.840.10045.4.3.2")
_SM2, _SM2_SM3 = oid_bytes(CURVE_OID), oid_bytes(SIGNATURE_OID)
_STAND_IN = ec.generate_private_key(ec.SECP256R1())


class Sm2Key:
    """An SM2 key pair: 32-byte private scalar, 64-byte public x‖y."""

    def __init__(self, private: bytes | None = None, public: bytes | None = None) -> None:
        if private is None or public is None:
            public, private = gmssl_pyx.sm2_key_generate()
        self.private, self.public = bytes(private), bytes(public)

    @property
    def key_identifier(self) -> bytes:
        return hashlib.sha1(b"\x04" + self.public).digest()  # RFC 5280 §4.2.1.2 method (1)

    def pkcs8_pem(self) -> bytes:
        """PKCS#8 PrivateKeyInfo, as `openssl genpkey -algorithm SM2` writes it."""
        algorithm = der.sequence(_oid(EC_PUBLIC_KEY_OID), _oid(CURVE_OID))
        ec_key = der.sequence(der.integer(1), _octets(self.private))
        body = base64.encodebytes(der.sequence(der.integer(0), algorithm, _octets(ec_key))).replace(b"\n", b"")
        lines = [body[i:i + 64] for i in range(0, len(body), 64)]
        return b"-----BEGIN PRIVATE KEY-----\n" + b"\n".join(lines) + b"\n-----END PRIVATE KEY-----\n"

    def sign(self, data: bytes) -> bytes:
        return bytes(gmssl_pyx.sm2_sign(self.private, self.public, data))


def private_scalar(key_pem: bytes) -> bytes:
    """The private scalar of a PKCS#8 SM2 key (what `openssl genpkey -algorithm SM2` writes)."""
    body = b"".join(line for line in key_pem.split(b"\n") if line and not line.startswith(b"-----"))
    info = list(der.children(der.read(base64.b64decode(body)).value))  # version, algorithm, privateKey
    ec_key = list(der.children(der.read(info[2].value).value))  # ECPrivateKey: version, privateKey, …
    scalar = ec_key[1].value
    if len(scalar) > 32:
        raise ValueError("not an SM2 private key")
    return scalar.rjust(32, b"\0")


def certificate(builder: x509.CertificateBuilder, subject_key: Sm2Key, issuer_key: Sm2Key) -> x509.Certificate:
    """The builder's certificate for an SM2 subject key, signed SM2-with-SM3 by `issuer_key`."""
    stand_in = _STAND_IN.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    sm2_spki = stand_in[:-64].replace(_P256, _SM2) + subject_key.public
    tbs = builder.public_key(_STAND_IN.public_key()).sign(_STAND_IN, hashes.SHA256()).tbs_certificate_bytes
    tbs = tbs.replace(stand_in, sm2_spki).replace(_ECDSA_SHA256, _SM2_SM3)
    return x509.load_der_x509_certificate(_signed(tbs, issuer_key))


def crl(builder: x509.CertificateRevocationListBuilder, issuer_key: Sm2Key) -> x509.CertificateRevocationList:
    tbs = builder.sign(_STAND_IN, hashes.SHA256()).tbs_certlist_bytes.replace(_ECDSA_SHA256, _SM2_SM3)
    return x509.load_der_x509_crl(_signed(tbs, issuer_key))


def _signed(tbs: bytes, key: Sm2Key) -> bytes:
    signature = key.sign(tbs)
    bits = b"\x00" + signature
    return der.sequence(tbs, der.sequence(_oid(SIGNATURE_OID)), b"\x03" + der.encode_length(len(bits)) + bits)


def _oid(dotted: str) -> bytes:
    body = oid_bytes(dotted)
    return b"\x06" + bytes([len(body)]) + body


def _octets(data: bytes) -> bytes:
    return b"\x04" + der.encode_length(len(data)) + data
