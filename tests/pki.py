"""Certificate hierarchies made at test time: RSA and ECDSA with `cryptography`, SM2 with the
OpenSSL 3 command line (always with the standard signer ID). No private key is committed."""
from __future__ import annotations

import datetime as dt
import itertools
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

DISTID = "distid:1234567812345678"
USCC_OID = "1.2.156.10260.4.4"
ID_OID = "1.2.156.10260.4.1.1.1"
_serials = itertools.count(0x1000)
_MIN_CNF = "[req]\ndistinguished_name=dn\n[dn]\n"


def _openssl(*args: str, data: bytes | None = None) -> bytes:
    done = subprocess.run(["openssl", *args], input=data, capture_output=True, check=False)
    if done.returncode:
        raise RuntimeError(f"openssl {args[0]} failed: {done.stderr.decode()[-500:]}")
    return done.stdout


@dataclass
class Issued:
    certificate: x509.Certificate
    key: Any  # an RSA/EC private key object, or the Path of an SM2 PEM key
    algorithm: str  # rsa | ecdsa | sm2
    workdir: Path

    @property
    def der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    @property
    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        if self.algorithm == "sm2":
            return Path(self.key).read_bytes()
        return self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())

    def sign(self, data: bytes, *, raw: bool = False, pss: bool = False) -> bytes:
        """A signature as a USB-key agent makes it (raw: r‖s instead of DER, for EC and SM2)."""
        if self.algorithm == "rsa":
            pad = padding.PSS(padding.MGF1(hashes.SHA256()), 32) if pss else padding.PKCS1v15()
            return self.key.sign(data, pad, hashes.SHA256())
        if self.algorithm == "ecdsa":
            signature = self.key.sign(data, ec.ECDSA(hashes.SHA256()))
        else:
            message = self.workdir / f"m{next(_serials)}"
            message.write_bytes(data)
            signature = _openssl("pkeyutl", "-sign", "-rawin", "-digest", "sm3", "-pkeyopt", DISTID,
                                 "-inkey", str(self.key), "-in", str(message))
        if not raw:
            return signature
        r, s = decode_dss_signature(signature)
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")


@dataclass
class Ca(Issued):
    revoked: list[int] = field(default_factory=list)

    def issue(self, cn: str, *, algorithm: str | None = None, ca: bool = False, path_length: int | None = None,
              usage: tuple[str, ...] = ("digitalSignature", "nonRepudiation"), strings: dict[str, str] | None = None,
              subject: dict[str, str] | None = None, crl_url: str | None = None, days: int = 30,
              not_before: dt.datetime | None = None) -> Any:
        """A certificate this CA signs; `strings` are extensions (OID → PrintableString value)."""
        algorithm = algorithm or self.algorithm
        if self.algorithm == "sm2":
            return self._issue_sm2(cn, ca=ca, path_length=path_length, usage=usage, strings=strings or {},
                                   subject=subject or {}, crl_url=crl_url, days=days)
        key = _new_key(algorithm)
        now = not_before or dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)
        builder = (x509.CertificateBuilder().subject_name(_name(cn, subject or {}))
                   .issuer_name(self.certificate.subject).public_key(key.public_key())
                   .serial_number(next(_serials)).not_valid_before(now).not_valid_after(now + dt.timedelta(days=days))
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), False))
        if ca:
            builder = builder.add_extension(x509.BasicConstraints(True, path_length), True)
            usage = ("keyCertSign", "cRLSign")
        builder = builder.add_extension(_usage(usage), True)
        for oid, value in (strings or {}).items():
            der = bytes([0x13, len(value)]) + value.encode()
            builder = builder.add_extension(x509.UnrecognizedExtension(x509.ObjectIdentifier(oid), der), False)
        if crl_url:
            point = x509.DistributionPoint([x509.UniformResourceIdentifier(crl_url)], None, None, None)
            builder = builder.add_extension(x509.CRLDistributionPoints([point]), False)
        certificate = builder.sign(self.key, hashes.SHA256())
        kind = Ca if ca else Issued
        return kind(certificate, key, algorithm, self.workdir)

    def _issue_sm2(self, cn: str, *, ca: bool, path_length: int | None, usage: tuple[str, ...],
                   strings: dict[str, str], subject: dict[str, str], crl_url: str | None, days: int) -> Any:
        serial = next(_serials)
        key = self.workdir / f"k{serial}.pem"
        _openssl("genpkey", "-algorithm", "SM2", "-out", str(key))
        extensions = []
        if ca:
            extensions.append("basicConstraints=critical,CA:TRUE" + (f",pathlen:{path_length}" if path_length is not None else ""))
            usage = ("keyCertSign", "cRLSign")
        extensions.append("keyUsage=critical," + ",".join(usage))
        extensions += [f"{oid}=ASN1:PRINTABLESTRING:{value}" for oid, value in strings.items()]
        if crl_url:
            extensions.append(f"crlDistributionPoints=URI:{crl_url}")
        certificate = _sm2_certificate(self, key, _subject(cn, subject), serial, days, extensions)
        kind = Ca if ca else Issued
        return kind(certificate, key, "sm2", self.workdir)

    def crl(self, *, hours: int = 2, next_update: dt.datetime | None = None) -> bytes:
        """A DER CRL listing `revoked`, signed by this CA."""
        if self.algorithm == "sm2":
            return self._crl_sm2(hours)
        now = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=1)
        builder = (x509.CertificateRevocationListBuilder().issuer_name(self.certificate.subject)
                   .last_update(now).next_update(next_update or now + dt.timedelta(hours=hours)))
        for serial in self.revoked:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(now).build())
        return builder.sign(self.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)

    def _crl_sm2(self, hours: int) -> bytes:
        db = Path(tempfile.mkdtemp(dir=self.workdir))
        (db / "crlnumber").write_text("01\n")
        (db / "index.txt").write_text("".join(f"R\t301231000000Z\t260101000000Z\t{s:X}\tunknown\t/CN=x\n"
                                              for s in self.revoked))
        (db / "ca.cnf").write_text(f"[ca]\ndefault_ca=d\n[d]\ndatabase={db}/index.txt\ncrlnumber={db}/crlnumber\n"
                                   "default_md=sm3\n")
        cert = db / "ca.pem"
        cert.write_bytes(self.pem)
        pem = _openssl("ca", "-gencrl", "-config", str(db / "ca.cnf"), "-keyfile", str(self.key), "-cert", str(cert),
                       "-sigopt", DISTID, "-crlhours", str(hours))
        return x509.load_pem_x509_crl(pem).public_bytes(serialization.Encoding.DER)


def root(cn: str, algorithm: str, workdir: Path, *, path_length: int | None = None) -> Ca:
    """A self-signed root CA."""
    if algorithm == "sm2":
        key = workdir / f"root{next(_serials)}.pem"
        _openssl("genpkey", "-algorithm", "SM2", "-out", str(key))
        extensions = ["basicConstraints=critical,CA:TRUE" + (f",pathlen:{path_length}" if path_length is not None else ""),
                      "keyUsage=critical,keyCertSign,cRLSign"]
        certificate = _sm2_certificate(None, key, _subject(cn, {}), next(_serials), 3650, extensions)
        return Ca(certificate, key, "sm2", workdir)
    key = _new_key(algorithm)
    now = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)
    name = _name(cn, {})
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(next(_serials)).not_valid_before(now).not_valid_after(now + dt.timedelta(days=3650))
                   .add_extension(x509.BasicConstraints(True, path_length), True)
                   .add_extension(_usage(("keyCertSign", "cRLSign")), True)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
                   .sign(key, hashes.SHA256()))
    return Ca(certificate, key, algorithm, workdir)


def _sm2_certificate(issuer: Ca | None, key: Path, subject: str, serial: int, days: int,
                     extensions: list[str]) -> x509.Certificate:
    cnf = key.with_suffix(".cnf")
    cnf.write_text(_MIN_CNF)
    args = ["req", "-x509", "-new", "-config", str(cnf), "-utf8", "-key", str(key), "-subj", subject,
            "-sm3", "-sigopt", DISTID, "-days", str(days), "-set_serial", str(serial)]
    if issuer is not None:
        ca_pem = key.with_suffix(".ca.pem")
        ca_pem.write_bytes(issuer.pem)
        args += ["-CA", str(ca_pem), "-CAkey", str(issuer.key)]
    for extension in extensions:
        args += ["-addext", extension]
    return x509.load_pem_x509_certificate(_openssl(*args))


def _new_key(algorithm: str) -> Any:
    if algorithm == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


_NAMES = {"CN": NameOID.COMMON_NAME, "O": NameOID.ORGANIZATION_NAME, "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
          "serialNumber": NameOID.SERIAL_NUMBER, "organizationIdentifier": x509.ObjectIdentifier("2.5.4.97")}


def _name(cn: str, extra: dict[str, str]) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]
                     + [x509.NameAttribute(_NAMES[k], v) for k, v in extra.items()])


def _subject(cn: str, extra: dict[str, str]) -> str:
    return "/CN=" + cn + "".join(f"/{k}={v}" for k, v in extra.items())


def _usage(names: tuple[str, ...]) -> x509.KeyUsage:
    flags = {"digitalSignature": "digital_signature", "nonRepudiation": "content_commitment",
             "keyEncipherment": "key_encipherment", "dataEncipherment": "data_encipherment",
             "keyAgreement": "key_agreement", "keyCertSign": "key_cert_sign", "cRLSign": "crl_sign"}
    values = {v: False for v in flags.values()} | {"encipher_only": False, "decipher_only": False}
    values |= {flags[n]: True for n in names}
    return x509.KeyUsage(**values)


class CrlServer:
    """CRLs served over HTTP from a dict that tests change; `fail` makes every fetch a 503."""

    def __init__(self) -> None:
        from starlette.applications import Starlette
        from starlette.responses import Response
        from starlette.routing import Route

        from tests.live import ThreadServer, free_port

        self.files: dict[str, bytes] = {}
        self.fetches = 0
        self.fail = False

        async def serve(request: Any) -> Response:
            self.fetches += 1
            body = self.files.get(request.path_params["name"])
            if self.fail or body is None:
                return Response(status_code=503 if self.fail else 404)
            return Response(body, media_type="application/pkix-crl")

        async def health(request: Any) -> Response:
            return Response("ok")

        app = Starlette(routes=[Route("/healthz", health), Route("/crl/{name}", serve)])
        self._server = ThreadServer(app, free_port())
        self.url = self._server.url

    def __enter__(self) -> CrlServer:
        self._server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.__exit__(*exc)
