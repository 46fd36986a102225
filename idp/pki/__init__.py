"""Certificates from several CAs (RSA, ECDSA and SM2): trust store, path validation, CRLs, identities.

`cryptography` parses every certificate and verifies RSA and ECDSA; SM2 signatures (which it cannot
verify) go through `idp.pki.sm2`. Paths, constraints and revocation are checked here, one code path
for every algorithm.
"""
