"""SM2-with-SM3 signatures (GB/T 32918, GM/T 0009 signer ID) behind one small interface.

`cryptography` parses SM2 certificates but cannot load SM2 keys or verify SM2 signatures, so the
verification goes through `gmssl_pyx`, a C extension wrapping GmSSL 3.2 (about 0.8 ms a verify on
one core). The pure-Python `gmssl` package is avoided: it signs with a non-CSPRNG nonce and has
had a public-key parsing defect. `gmalg` (pure Python) would be a drop-in at ~30 ms a verify.
"""
from __future__ import annotations

import gmssl_pyx
from cryptography import x509

from idp.pki import der

SIGNER_ID = b"1234567812345678"  # GM/T 0009-2012 default user ID
CURVE_OID = "1.2.156.10197.1.301"
SIGNATURE_OID = "1.2.156.10197.1.501"  # SM2-with-SM3
EC_PUBLIC_KEY_OID = "1.2.840.10045.2.1"


def is_sm2(certificate: x509.Certificate) -> bool:
    """True when the certificate's key is on the SM2 curve."""
    if certificate.public_key_algorithm_oid.dotted_string != EC_PUBLIC_KEY_OID:
        return False
    try:
        algorithm = next(der.children(_spki(certificate).value))  # AlgorithmIdentifier
        params = list(der.children(algorithm.value))
    except (der.DerError, IndexError, StopIteration):
        return False
    return len(params) == 2 and params[1].value == oid_bytes(CURVE_OID)


def public_point(certificate: x509.Certificate) -> bytes:
    """The 64-byte x‖y of the certificate's SM2 key (uncompressed point in the SPKI)."""
    parts = list(der.children(_spki(certificate).value))
    if len(parts) != 2 or parts[1].tag != 0x03:
        raise der.DerError("subjectPublicKeyInfo without a BIT STRING")
    bits = parts[1].value
    if len(bits) != 66 or bits[0] != 0 or bits[1] != 0x04:
        raise der.DerError("SM2 key is not an uncompressed point")
    return bits[2:]


def verify(point: bytes, message: bytes, signature: bytes, signer_id: bytes = SIGNER_ID) -> bool:
    """SM2 verify of SM3(Z_A ‖ message); `signature` is DER SEQUENCE{r, s} or raw 64-byte r‖s."""
    try:
        return bool(gmssl_pyx.sm2_verify(point, message, as_der(signature), signer_id=signer_id))
    except (gmssl_pyx.GmsslInnerError, ValueError, TypeError):
        return False


def as_der(signature: bytes, size: int = 32) -> bytes:
    """DER SEQUENCE{r, s} from either encoding (raw r‖s is what some agents send)."""
    if is_der_pair(signature):
        return signature
    if len(signature) != 2 * size:
        raise ValueError("signature is neither DER SEQUENCE{r, s} nor raw r‖s")
    r, s = int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
    return der.sequence(der.integer(r), der.integer(s))


def is_der_pair(signature: bytes) -> bool:
    """A DER SEQUENCE of exactly two INTEGERs filling the bytes."""
    try:
        outer = der.read(signature)
        parts = list(der.children(outer.value))
    except der.DerError:
        return False
    return outer.tag == 0x30 and outer.end == len(signature) and [p.tag for p in parts] == [0x02, 0x02]


def _spki(certificate: x509.Certificate) -> der.Tlv:
    tbs = list(der.children(der.read(certificate.tbs_certificate_bytes).value))
    fields = tbs[1:] if tbs and tbs[0].tag == 0xA0 else tbs  # skip the explicit [0] version
    return fields[5]  # serial, signature, issuer, validity, subject, subjectPublicKeyInfo


def oid_bytes(dotted: str) -> bytes:
    numbers = [int(n) for n in dotted.split(".")]
    body = bytes([40 * numbers[0] + numbers[1]])
    for n in numbers[2:]:
        chunk = [n & 0x7F]
        while n > 0x7F:
            n >>= 7
            chunk.insert(0, 0x80 | (n & 0x7F))
        body += bytes(chunk)
    return body
