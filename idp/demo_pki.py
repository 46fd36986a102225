"""The demo's certificate authorities: one SM2 CA and one RSA CA, each issuing the demo enterprise
(idp.demo's, whose agent the demo citizen is) a certificate (the credit code in the GM/T 0015-2023 extension for one, in the subject
serialNumber for the other), their CRLs served at /demo/crl/, and the key files the reference
agent reads. Made once under ./var/demo-pki/ (never committed); CRLs are re-signed at each start.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from idp.core import Core
from idp.pki import sm2issue
from idp.pki.sm2 import public_point
from idp.demo import ENTERPRISE_CODE, ENTERPRISE_NAME
from idp.pki.truststore import CaProfile, load_certificate

CAS = {"sm2": ("演示国密CA (SM2)", "demo-sm2-ca", ("ext:1.2.156.10260.4.4",)),
       "rsa": ("Demo RSA CA", "demo-rsa-ca", ("subject:2.5.4.5",))}
USCC_OID = x509.ObjectIdentifier("1.2.156.10260.4.4")


@dataclass(frozen=True)
class DemoEnterprise:
    credit_code: str
    identities: tuple[tuple[Path, Path], ...]  # (key file, certificate file) per certificate, for the agent


def seed_certificates(core: Core) -> DemoEnterprise:
    """Idempotent: CAs and certificates under var/demo-pki, trusted CAs, fresh CRLs (after seed_demo,
    which puts the enterprise in the legal-entity registry)."""
    folder = core.settings.var_dir / "demo-pki"
    folder.mkdir(parents=True, exist_ok=True)
    code_file, code = folder / "credit-code.txt", ENTERPRISE_CODE
    crl_base = core.settings.issuer + "/demo/crl/"
    for algorithm in CAS:
        leaf = folder / f"{algorithm}-leaf.pem"
        if not leaf.exists() or not code_file.exists() or code_file.read_text().strip() != code:
            _make(folder, algorithm, code, crl_base)
    code_file.write_text(code)
    _publish_crls(folder)
    trusted = {anchor.name for anchor in core.trust.anchors()}
    for algorithm, (_cn, name, fields) in CAS.items():
        if name not in trusted:
            core.trust.add(name, (folder / f"{algorithm}-ca.pem").read_bytes(), CaProfile(identity_fields=fields))
    return DemoEnterprise(code, tuple((folder / f"{a}-leaf.key", folder / f"{a}-leaf.pem") for a in CAS))


def crl_file(core: Core, name: str) -> Path | None:
    path = core.settings.var_dir / "demo-pki" / f"{name}.crl"
    return path if name in CAS and path.exists() else None


def _make(folder: Path, algorithm: str, code: str, crl_base: str) -> None:
    cn, _name, _fields = CAS[algorithm]
    now = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Yihao Demo")])
    subject = [x509.NameAttribute(NameOID.COMMON_NAME, ENTERPRISE_NAME)]
    if algorithm == "rsa":
        subject.append(x509.NameAttribute(NameOID.SERIAL_NUMBER, code))
    point = x509.DistributionPoint([x509.UniformResourceIdentifier(crl_base + algorithm + ".crl")], None, None, None)
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).serial_number(x509.random_serial_number())
          .not_valid_before(now).not_valid_after(now + dt.timedelta(days=3650))
          .add_extension(x509.BasicConstraints(True, 0), True).add_extension(_usage(ca=True), True))
    leaf = (x509.CertificateBuilder().subject_name(x509.Name(subject)).issuer_name(ca_name)
            .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + dt.timedelta(days=730))
            .add_extension(_usage(ca=False), True).add_extension(x509.CRLDistributionPoints([point]), False))
    if algorithm == "sm2":
        leaf = leaf.add_extension(x509.UnrecognizedExtension(USCC_OID, bytes([0x13, len(code)]) + code.encode()), False)
        ca_key, leaf_key = sm2issue.Sm2Key(), sm2issue.Sm2Key()
        ca_cert = sm2issue.certificate(ca.add_extension(x509.SubjectKeyIdentifier(ca_key.key_identifier), False),
                                       ca_key, ca_key)
        leaf_cert = sm2issue.certificate(leaf.add_extension(x509.AuthorityKeyIdentifier(ca_key.key_identifier, None, None),
                                                            False), leaf_key, ca_key)
        (folder / "sm2-ca.key").write_bytes(ca_key.pkcs8_pem())
        (folder / "sm2-leaf.key").write_bytes(leaf_key.pkcs8_pem())
    else:
        rsa_ca, rsa_leaf = (rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(2))
        ca_cert = ca.public_key(rsa_ca.public_key()).sign(rsa_ca, hashes.SHA256())
        leaf_cert = leaf.public_key(rsa_leaf.public_key()).sign(rsa_ca, hashes.SHA256())
        for name, key in (("rsa-ca.key", rsa_ca), ("rsa-leaf.key", rsa_leaf)):
            (folder / name).write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                          serialization.NoEncryption()))
    for key_file in folder.glob("*.key"):
        key_file.chmod(0o600)
    (folder / f"{algorithm}-ca.pem").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    (folder / f"{algorithm}-leaf.pem").write_bytes(leaf_cert.public_bytes(serialization.Encoding.PEM))


def _publish_crls(folder: Path) -> None:
    now = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=1)
    for algorithm in CAS:
        ca_cert = load_certificate((folder / f"{algorithm}-ca.pem").read_bytes())
        builder = (x509.CertificateRevocationListBuilder().issuer_name(ca_cert.subject).last_update(now)
                   .next_update(now + dt.timedelta(days=7)))
        key_pem = (folder / f"{algorithm}-ca.key").read_bytes()
        if algorithm == "sm2":
            key = sm2issue.Sm2Key(sm2issue.private_scalar(key_pem), public_point(ca_cert))
            crl = sm2issue.crl(builder, key)
        else:
            crl = builder.sign(serialization.load_pem_private_key(key_pem, None), hashes.SHA256())  # type: ignore[arg-type]
        (folder / f"{algorithm}.crl").write_bytes(crl.public_bytes(serialization.Encoding.DER))


def _usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=not ca, content_commitment=not ca, key_encipherment=False,
                         data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
                         encipher_only=False, decipher_only=False)
