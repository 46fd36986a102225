"""Benchmark: what the hash-chained audit trail costs a login, and how fast the chain is written.

Per backend (SQLite + in-process store; PostgreSQL + Redis when reachable), in one process, on a core
built exactly as `yihao serve` builds it:

    floor        one argon2id password verification (OWASP parameters): what bounds a login
    login        the password-login path without HTTP (throttle check, authenticate, throttle success,
                 record login.succeeded), with the audit writer on and off, alternated in rounds so both
                 see the same machine: medians and their ratio (the target: audit adds nothing visible)
    record()     the request's share of one audit event during a burst (below the writer's queue capacity:
                 p50 / p99), and the rows/s the writer thread sustains meanwhile, sharing the process
    append       rows/s of the chain append alone, 200-row batches (lock, head read, HMAC, INSERT)
    verify       rows/s `yihao audit verify` walks

Usage:
    .venv/bin/python bench/audit.py            # 5 rounds x 40 logins, 8,000-event burst
    .venv/bin/python bench/audit.py --quick    # 3 rounds x 10 logins, 5,000-event burst (under a minute)
Results are written to bench/results/audit.txt (audit.quick.txt for --quick).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Callable, Iterator

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import PG_ADMIN_URL, REDIS_URL, git_head, out, write_results  # noqa: E402

from idp import audit, events  # noqa: E402
from idp.core import Core, build_core  # noqa: E402
from idp.crypto import b64u  # noqa: E402
from idp.settings import load_settings  # noqa: E402

PASSWORD = "bench correct horse battery staple"


def backends(tmp: Path) -> Iterator[tuple[str, dict[str, str]]]:
    yield "sqlite", {"YIHAO_DATABASE_URL": f"sqlite:///{tmp}/audit.db"}
    try:
        import psycopg
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
        name = f"yihao_bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except Exception as exc:  # noqa: BLE001 — any reason PostgreSQL/Redis are not there: skip them
        out(f"postgres: skipped ({type(exc).__name__})")
        return
    try:
        yield "postgres", {"YIHAO_DATABASE_URL": PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}",
                           "YIHAO_REDIS_URL": REDIS_URL, "YIHAO_REDIS_PREFIX": f"yihao-bench-{name}:"}
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def timed(fn: Callable[[], object], n: int) -> list[float]:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return samples


def login(core: Core, username: str) -> Callable[[], object]:
    def run() -> object:
        keys = core.throttle.keys("login", account=username, address="127.0.0.1")
        assert core.throttle.check(keys).allowed
        profile = core.accounts.authenticate(username, PASSWORD)
        assert profile is not None
        core.throttle.success(keys)
        events.record(events.LOGIN_SUCCEEDED, subject=profile.id, client_id="bench", amr=["pwd"])
        return profile

    return run


def measure(name: str, env: dict[str, str], tmp: Path, rounds: int, per_round: int, burst: int) -> None:
    settings = load_settings({"YIHAO_VAR_DIR": str(tmp), "YIHAO_MASTER_KEY": b64u(b"b" * 32),
                              "YIHAO_LOG_LEVEL": "WARNING", **env})
    core = build_core(settings, migrate=True)
    writer = core.audit
    assert writer is not None
    try:
        username = f"bench{uuid.uuid4().hex[:8]}"
        created = core.accounts.create(username, PASSWORD)
        stored = core.engine.connect().exec_driver_sql(
            "SELECT password_hash FROM account WHERE id = ?" if name == "sqlite" else
            "SELECT password_hash FROM account WHERE id = %(id)s", (created.id,) if name == "sqlite" else
            {"id": created.id}).scalar_one()
        floor = statistics.median(timed(lambda: core.accounts.passwords.verify(stored, PASSWORD), rounds * per_round))
        on: list[float] = []
        off: list[float] = []
        run = login(core, username)
        for n in range(rounds * per_round):  # alternate login by login, so both modes share the machine's state
            for mode in ((on, writer), (off, None)) if n % 2 else ((off, None), (on, writer)):
                events.use(mode[1])
                mode[0].extend(timed(run, 1))
        events.use(writer)
        writer.flush()
        m_on, m_off = statistics.median(on), statistics.median(off)
        out(f"{name:8} floor argon2id verify {floor * 1000:7.2f} ms")
        out(f"{name:8} login  audit on {m_on * 1000:7.2f} ms ({m_on / floor:.2f}x floor)   "
            f"audit off {m_off * 1000:7.2f} ms ({m_off / floor:.2f}x floor)   on/off {m_on / m_off:.3f}")

        calls = []
        started = time.perf_counter()
        for n in range(burst):
            t0 = time.perf_counter()
            events.record(events.TOKEN_ISSUED, subject=created.id, client_id="bench", grant_type="refresh_token", n=n)
            calls.append(time.perf_counter() - t0)
        writer.flush(timeout=600)
        elapsed = time.perf_counter() - started
        calls.sort()
        out(f"{name:8} record() during a burst of {burst}: p50 {calls[len(calls) // 2] * 1e6:.1f} us, "
            f"p99 {calls[int(len(calls) * 0.99)] * 1e6:.1f} us;  chain written at {burst / elapsed:,.0f} rows/s")
        rows = [events.audit_row(events.TOKEN_ISSUED, subject=created.id, client_id="bench", n=n) for n in range(200)]
        started = time.perf_counter()
        for _ in range(10):
            with core.engine.begin() as connection:
                audit.append(connection, audit.chain_key(core.master), rows)
        out(f"{name:8} append alone: {2000 / (time.perf_counter() - started):,.0f} rows/s")
        started = time.perf_counter()
        verdict = audit.verify(core.engine, audit.chain_key(core.master))
        elapsed = time.perf_counter() - started
        assert verdict.intact, verdict
        out(f"{name:8} verify {verdict.records} rows: {verdict.records / elapsed:,.0f} rows/s, intact")
    finally:
        core.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    rounds, per_round, burst = (3, 10, 5_000) if args.quick else (5, 40, 8_000)
    out(f"# bench/audit.py{' --quick' if args.quick else ''} at {git_head()}, "
        f"{time.strftime('%Y-%m-%d %H:%M')} ({rounds} rounds x {per_round} logins per mode, burst {burst})")
    with tempfile.TemporaryDirectory() as tmp:
        for name, env in backends(Path(tmp)):
            measure(name, env, Path(tmp), rounds, per_round, burst)
    write_results("audit", args.quick)


if __name__ == "__main__":
    main()
