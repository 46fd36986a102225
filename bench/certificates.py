"""Certificate logins verified per second — RSA-2048, ECDSA P-256 and SM2 — beside the raw
signature-verification floor measured in the same run.

    .venv/bin/python bench/certificates.py            # 5 rounds x 400 logins per algorithm and backend
    .venv/bin/python bench/certificates.py --quick    # 3 rounds x 100 (well under 2 minutes)

Each algorithm gets a chain of 2 made at start (trusted root → intermediate → leaf; the agent
posts the intermediate) and CRLs from both CAs, fetched once and then cached in the ephemeral
store. One "login verified" is `CertificateLogin.login` as the sign-in page's POST calls it: take
the single-use challenge, verify the signature over it, validate the path (two certificate
signatures), check both certificates against the cached CRLs, extract and validate the credit
code, find the enterprise account by blind index and update the certificate binding's last use
(one write transaction). Challenges and signatures are made before the clock starts (signing is
the USB key's work). One thread, as one thread-pool worker runs it.

Floors: one raw signature verification of the leaf's key (what the login does at least 3 times:
the challenge signature and two certificate signatures). Ratios: per-login time / floor.
"""
from __future__ import annotations

import argparse
import base64
import datetime as dt
import io
import os
import random
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa  # noqa: E402
from cryptography.hazmat.primitives.serialization import Encoding  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

from bench.harness import git_head, out, run_main, write_results  # noqa: E402
from idp.pki import signatures, sm2issue  # noqa: E402
from idp.pki.crl import CrlUnavailable  # noqa: E402
from idp.pki.truststore import CaProfile  # noqa: E402
from realname.registry.importer import Importer  # noqa: E402
from realname.testdata import make_credit_code  # noqa: E402

USCC_OID = x509.ObjectIdentifier("1.2.156.10260.4.4")
ORIGIN = "http://127.0.0.1:8000"
PG_ADMIN = os.environ.get("YIHAO_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("YIHAO_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


class Key:
    """A key pair of one algorithm that can sign TBS bytes as a CA and a challenge as a USB key."""

    def __init__(self, algorithm: str) -> None:
        self.algorithm = algorithm
        if algorithm == "sm2":
            self.sm2 = sm2issue.Sm2Key()
        else:
            self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048) if algorithm == "rsa" \
                else ec.generate_private_key(ec.SECP256R1())

    def issue(self, builder: x509.CertificateBuilder, subject: Key) -> x509.Certificate:
        if self.algorithm == "sm2":
            return sm2issue.certificate(builder, subject.sm2, self.sm2)
        return builder.public_key(subject.key.public_key()).sign(self.key, hashes.SHA256())

    def crl(self, builder: x509.CertificateRevocationListBuilder) -> bytes:
        crl = sm2issue.crl(builder, self.sm2) if self.algorithm == "sm2" else builder.sign(self.key, hashes.SHA256())
        return crl.public_bytes(Encoding.DER)

    def sign(self, data: bytes) -> bytes:
        if self.algorithm == "sm2":
            return self.sm2.sign(data)
        if self.algorithm == "rsa":
            return self.key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        return self.key.sign(data, ec.ECDSA(hashes.SHA256()))


class Crls:
    """The CRL source of this run: CRLs by URL, counted (after the first fetch they come from the store)."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.fetches = 0

    def fetch(self, url: str) -> bytes:
        self.fetches += 1
        if url not in self.files:
            raise CrlUnavailable("unknown")
        return self.files[url]


def hierarchy(algorithm: str, code: str, crls: Crls) -> tuple[x509.Certificate, x509.Certificate, x509.Certificate, Key]:
    """root → intermediate → leaf, each CA with a CRL at a URL its children name."""
    now = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)
    keys = [Key(algorithm) for _ in range(3)]
    names = [x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"Bench {algorithm} {role} {uuid.uuid4().hex[:6]}")])
             for role in ("root", "sub", "leaf")]
    certs: list[x509.Certificate] = []
    for depth in range(3):
        issuer = keys[max(depth - 1, 0)]
        builder = (x509.CertificateBuilder().subject_name(names[depth]).issuer_name(names[max(depth - 1, 0)])
                   .serial_number(x509.random_serial_number()).not_valid_before(now)
                   .not_valid_after(now + dt.timedelta(days=30)))
        if depth < 2:
            builder = builder.add_extension(x509.BasicConstraints(True, None if depth == 0 else 0), True)
        else:
            builder = builder.add_extension(x509.UnrecognizedExtension(USCC_OID, bytes([0x13, 18]) + code.encode()), False)
        if depth > 0:
            url = f"http://crl.bench.invalid/{algorithm}-{depth - 1}-{uuid.uuid4().hex[:6]}.crl"
            point = x509.DistributionPoint([x509.UniformResourceIdentifier(url)], None, None, None)
            builder = builder.add_extension(x509.CRLDistributionPoints([point]), False)
            crls.files[url] = issuer.crl(x509.CertificateRevocationListBuilder().issuer_name(names[depth - 1])
                                         .last_update(now).next_update(now + dt.timedelta(hours=2)))
        certs.append(issuer.issue(builder, keys[depth]))
    return certs[0], certs[1], certs[2], keys[2]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def floor_seconds(leaf: x509.Certificate, key: Key, rounds: int) -> float:
    """Median time of one raw verification of the leaf key's signature (no path, no CRL, no database)."""
    signature = key.sign(b"yihao-login|floor")
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(50):
            assert signatures.verify(leaf, b"yihao-login|floor", signature)
        samples.append((time.perf_counter() - started) / 50)
    return statistics.median(samples)


def bench_backend(name: str, database_url: str, redis_url: str | None, rounds: int, per_round: int) -> None:
    from idp.core import build_core
    from idp.settings import load_settings

    var = Path(os.environ.get("TMPDIR", "/tmp")) / f"yihao-bench-cert-{uuid.uuid4().hex[:8]}"
    env = {"YIHAO_DATABASE_URL": database_url, "YIHAO_VAR_DIR": str(var), "YIHAO_LOG_LEVEL": "WARNING",
           "YIHAO_MASTER_KEY": base64.urlsafe_b64encode(b"b" * 32).rstrip(b"=").decode(),
           **({"YIHAO_REDIS_URL": redis_url, "YIHAO_REDIS_PREFIX": f"yihao-bench-{uuid.uuid4().hex[:8]}:"}
              if redis_url else {})}
    core = build_core(load_settings(env), migrate=True)
    crls = Crls()
    core.certificates._revocation._source = crls  # this run's CRLs, by URL, instead of HTTP
    out(f"\n[{name}]  {rounds} rounds x {per_round} logins per algorithm, one thread")
    out(f"{'algorithm':<10} {'floor verify':>13} {'login p50':>10} {'logins/s':>9} {'login/floor':>12} {'fetches':>8}")
    try:
        for algorithm in ("rsa", "ecdsa", "sm2"):
            code = make_credit_code(random.Random())
            csv = f"credit_code,name,legal_representative,status\n{code},基准测试企业{code[-4:]},张三,active\n"
            Importer(core.engine, core.vault).run(io.StringIO(csv), kind="entities")
            root, sub, leaf, key = hierarchy(algorithm, code, crls)
            core.trust.add(f"bench-{algorithm}-{uuid.uuid4().hex[:6]}", root.public_bytes(Encoding.PEM), CaProfile())
            chain = [b64(sub.public_bytes(Encoding.DER))]
            certificate = b64(leaf.public_bytes(Encoding.DER))

            def prepared(n: int) -> list[tuple[str, str]]:
                out_ = []
                for _ in range(n):
                    text = core.certificates.challenge(interaction="bench", browser="bench-browser", origin=ORIGIN)
                    out_.append((text, b64(key.sign(text.encode()))))
                return out_

            def login(challenge: str, signature: str) -> None:
                core.certificates.login(interaction="bench", browser="bench-browser", challenge=challenge,
                                        certificate=certificate, signature=signature, chain=chain)

            login(*prepared(1)[0])  # first login: creates the account, fetches both CRLs into the store
            fetched = crls.fetches
            samples = []
            for _ in range(rounds):
                batch = prepared(per_round)
                started = time.perf_counter()
                for challenge, signature in batch:
                    login(challenge, signature)
                samples.append((time.perf_counter() - started) / per_round)
            per_login = statistics.median(samples)
            floor = floor_seconds(leaf, key, rounds)
            out(f"{algorithm:<10} {floor * 1e3:>10.3f} ms {per_login * 1e3:>7.2f} ms {1 / per_login:>9.0f} "
                f"{per_login / floor:>11.1f}x {crls.fetches - fetched:>8}")
    finally:
        core.close()


def postgres_database() -> tuple[str, Callable[[], None]] | None:
    try:
        import psycopg

        name = f"yihao_bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except Exception as exc:  # noqa: BLE001 - any reason PostgreSQL is not there
        out(f"(PostgreSQL not reachable: {type(exc).__name__}; skipped)")
        return None

    def drop() -> None:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return PG_ADMIN.rsplit("/", 1)[0] + "/" + name, drop


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 rounds x 100 logins (a smoke check)")
    parser.add_argument("--backend", action="append", choices=("sqlite", "postgres"), help="default: both")
    args = parser.parse_args()
    rounds, per_round = (3, 100) if args.quick else (5, 400)
    out(f"bench/certificates.py  {time.strftime('%Y-%m-%d %H:%M:%S')}  commit {git_head()}  cpus {os.cpu_count()}")
    out("login verified = challenge taken + signature + chain of 2 (two certificate signatures) + 2 cached CRLs"
        " + credit code + account lookup + binding update")
    for backend in args.backend or ["sqlite", "postgres"]:
        if backend == "sqlite":
            path = Path(os.environ.get("TMPDIR", "/tmp")) / f"yihao-bench-cert-{uuid.uuid4().hex[:8]}.db"
            bench_backend("SQLite + in-process store", f"sqlite:///{path}", None, rounds, per_round)
            path.unlink(missing_ok=True)
        else:
            found = postgres_database()
            if found is None:
                continue
            url, drop = found
            try:
                bench_backend("PostgreSQL + Redis", url, REDIS_URL, rounds, per_round)
            finally:
                drop()
    write_results("certificates", args.quick)
    return 0


if __name__ == "__main__":
    run_main(main)
