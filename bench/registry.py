"""Local population registry at scale: import N synthetic people, then verify name + ID number.

    .venv/bin/python bench/registry.py --n 1000000 --backend sqlite --backend postgres

1. writes N people to a CSV file, streaming (unique, valid ID numbers made by the algorithm);
2. per backend, runs `yihao registry import` as its own process: rows/s and its peak RSS
   (getrusage of that child);
3. verifies random people through LocalPopulationRegistry (a third each match, mismatch and
   not_found): p50 / p99 latency of one verification at that size.
"""
from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from idp import db  # noqa: E402
from idp.crypto import MasterKey, b64u  # noqa: E402
from realname.idnumber import check_character  # noqa: E402
from realname.pii import IdNumber, PiiVault  # noqa: E402
from realname.registry.local import LocalPopulationRegistry  # noqa: E402
from realname.testdata import DIVISIONS  # noqa: E402

SECRET = b"bench-master-key-not-a-secret!!!"
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉兰萍红鹏建国志文海燕晓东欣怡子涵浩宇梓轩雨桐"
PG_ADMIN = os.environ.get("YIHAO_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def person(i: int) -> tuple[str, str]:
    """The i-th synthetic person: unique (division, birth date, sequence) for i < 12 × 28,000 × 1000."""
    division = DIVISIONS[i % len(DIVISIONS)]
    day, sequence = divmod(i // len(DIVISIONS), 1000)
    birth = time.gmtime((3652 + day % 16_000) * 86_400)  # 1980-01-01 onwards, before 2024
    body = f"{division}{birth.tm_year:04d}{birth.tm_mon:02d}{birth.tm_mday:02d}{sequence:03d}"
    name = SURNAMES[i * 7919 % len(SURNAMES)] + GIVEN[i * 104_729 % len(GIVEN)] + GIVEN[i // 13 % len(GIVEN)]
    return name, body + check_character(body)


def write_csv(path: Path, n: int) -> float:
    started = time.monotonic()
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("name,id_number\n")
        for i in range(n):
            name, number = person(i)
            out.write(f"{name},{number}\n")
    return time.monotonic() - started


def run_import(env: dict[str, str], path: Path, batch: int) -> tuple[float, int, str]:
    """Seconds, peak RSS in MiB and the summary line of one `yihao registry import` process."""
    full = {**os.environ, **env}
    subprocess.run([sys.executable, "-m", "idp", "db", "upgrade"], env=full, check=True, capture_output=True)
    started = time.monotonic()
    child = subprocess.Popen([sys.executable, "-m", "idp", "registry", "import", str(path), "--batch-size", str(batch)],
                             env=full, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert child.stdout is not None
    summary = child.stdout.read().strip()
    _pid, status, usage = os.wait4(child.pid, 0)
    seconds = time.monotonic() - started
    if status != 0:
        raise SystemExit(f"import failed ({status}): {summary}")
    return seconds, usage.ru_maxrss // 1024, summary


def lookups(url: str, n: int, count: int) -> tuple[float, float, dict[str, int]]:
    engine = db.make_engine(url, pool_size=1)
    registry = LocalPopulationRegistry(engine, PiiVault(MasterKey("bench", SECRET)))
    rng = random.Random(7)
    times, outcomes = [], {"match": 0, "mismatch": 0, "not_found": 0}
    for k in range(count):
        name, number = person(rng.randrange(n))
        if k % 3 == 1:
            name = "不匹配"
        elif k % 3 == 2:
            name, number = person(n + rng.randrange(n))  # never imported
        started = time.perf_counter()
        verdict = registry.verify(name, IdNumber.parse(number))
        times.append(time.perf_counter() - started)
        outcomes[verdict.outcome] += 1
    engine.dispose()
    times.sort()
    return times[len(times) // 2] * 1000, times[int(len(times) * 0.99)] * 1000, outcomes


def postgres_database() -> str:
    import psycopg

    name = f"yihao_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name


def drop_postgres(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000_000, help="people to import (default 10,000,000)")
    parser.add_argument("--backend", action="append", choices=("sqlite", "postgres"), help="default: both")
    parser.add_argument("--lookups", type=int, default=30_000)
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument("--work", type=Path, default=ROOT / "var" / "bench-registry")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    path = args.work / f"people-{args.n}.csv"
    if not path.exists():
        seconds = write_csv(path, args.n)
        print(f"generated {args.n:,} people in {seconds:.0f} s ({path.stat().st_size / 2**20:,.0f} MiB CSV)")
    print(f"N = {args.n:,} people; cores: {os.cpu_count()}; python {sys.version.split()[0]}")
    for backend in args.backend or ["sqlite", "postgres"]:
        pg_name = None
        if backend == "sqlite":
            file = args.work / f"registry-{args.n}.db"
            for leftover in args.work.glob(f"registry-{args.n}.db*"):
                leftover.unlink()
            url = f"sqlite:///{file}"
        else:
            pg_name = postgres_database()
            url = PG_ADMIN.rsplit("/", 1)[0] + f"/{pg_name}"
        try:
            env = {"YIHAO_DATABASE_URL": url, "YIHAO_MASTER_KEY": b64u(SECRET), "YIHAO_VAR_DIR": str(args.work),
                   "YIHAO_LOG_LEVEL": "WARNING"}
            seconds, peak, summary = run_import(env, path, args.batch_size)
            print(f"{backend:8} import: {args.n / seconds:,.0f} rows/s ({seconds:,.0f} s), peak RSS {peak} MiB"
                  f"  [{summary}]")
            p50, p99, outcomes = lookups(url, args.n, args.lookups)
            print(f"{backend:8} verify: p50 {p50:.3f} ms, p99 {p99:.3f} ms over {args.lookups:,} lookups {outcomes}")
        finally:
            if pg_name:
                drop_postgres(pg_name)


if __name__ == "__main__":
    main()
