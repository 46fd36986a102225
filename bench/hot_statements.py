"""Benchmark: the statements every token runs, on SQLAlchemy's compiled path and as driver statements.

A refresh grant spends one token (UPDATE … RETURNING) and inserts its successor; every token writes an
audit row. Those statements run as `idp.db.DriverStatement`s: compiled once per dialect, their values
converted by the column types' own processors, a single execution sent on the connection's own cursor
(no result object), a batch with `exec_driver_sql`. The baseline runs the very same statement objects
through `Connection.execute`, SQLAlchemy's compiled path, in the same process, alternated round by round
so both see the same machine.

Per backend (SQLite file; PostgreSQL + Redis when reachable), on a core built as `yihao serve` builds it:

    rotate   one `RefreshTokens.rotate` (spend + successor + commit), thread CPU per call
    audit    `audit.append` of 50-row batches (lock, head read, HMAC chain, INSERT, commit), thread CPU per row

Usage:
    .venv/bin/python bench/hot_statements.py            # 9 rounds
    .venv/bin/python bench/hot_statements.py --quick    # 3 rounds
Results are written to bench/results/hot_statements.txt (hot_statements.quick.txt for --quick).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from sqlalchemy import Connection

sys.path.insert(0, str(Path(__file__).resolve().parent))
from audit import backends  # noqa: E402
from harness import git_head, out, write_results  # noqa: E402

from idp import audit, refresh  # noqa: E402
from idp.core import Core, build_core  # noqa: E402
from idp.crypto import b64u  # noqa: E402
from idp.db import DriverStatement  # noqa: E402
from idp.settings import load_settings  # noqa: E402
from idp.tokens import Authentication  # noqa: E402

PASSWORD = "bench correct horse battery staple"
ROTATIONS = 300
AUDIT_BATCHES, AUDIT_BATCH = 20, 50


class CompiledPath:
    """The baseline: the same statement object, executed by `Connection.execute`."""

    def __init__(self, driver: DriverStatement) -> None:
        self.statement, self.returns = driver.statement, driver.returns

    def execute(self, connection: Connection, params: Mapping[str, Any]) -> Any:
        result = connection.execute(self.statement, params)
        return result.first() if self.returns else result.close()

    def execute_many(self, connection: Connection, rows: Iterable[Mapping[str, Any]]) -> None:
        connection.execute(self.statement, list(rows))


def paths() -> dict[str, dict[str, Any]]:
    driver = {"_SPEND": refresh._SPEND, "_ADD": refresh._ADD, "_INSERT": audit._INSERT}
    return {"compiled": {name: CompiledPath(statement) for name, statement in driver.items()}, "driver": driver}


def use(path: dict[str, Any]) -> None:
    refresh._SPEND, refresh._ADD, audit._INSERT = path["_SPEND"], path["_ADD"], path["_INSERT"]


def cpu_per(n: int, fn: Callable[[], None]) -> float:
    began = time.thread_time()
    fn()
    return (time.thread_time() - began) / n * 1e6


def measure(core: Core, rounds: int) -> dict[str, dict[str, list[float]]]:
    account = core.accounts.create("bench-hot", PASSWORD)
    client_id = core.clients.create(name="bench", redirect_uris=["https://rp.example/cb"])[0].client_id
    _handle, session = core.sessions.create(account.id, ("pwd",), "loa/1")

    def family() -> str:
        auth = Authentication(account_id=account.id, auth_time=int(time.time()), amr=("pwd",), acr="loa/1",
                              sid=session.sid)
        return core.refresh.issue(client_id, auth, "openid offline_access", (), True)

    ways = paths()
    tokens = {name: family() for name in ways}
    key = audit.chain_key(core.master)
    results: dict[str, dict[str, list[float]]] = {"rotate": {n: [] for n in ways}, "audit": {n: [] for n in ways}}
    try:
        for _ in range(rounds):
            for name, path in ways.items():
                use(path)

                def rotations() -> None:
                    for _ in range(ROTATIONS):
                        tokens[name] = core.refresh.rotate(tokens[name], client_id)[0]

                def appends() -> None:
                    now = datetime.now(timezone.utc)
                    batch = [dict(at=now, event="token.issued", outcome="success", actor=None, subject=account.id,
                                  client_id=client_id, address="127.0.0.1", request_id="r" * 22,
                                  details={"grant_type": "refresh_token", "scope": "openid"})
                             for _ in range(AUDIT_BATCH)]
                    for _ in range(AUDIT_BATCHES):
                        with core.engine.begin() as connection:
                            audit.append(connection, key, batch)

                results["rotate"][name].append(cpu_per(ROTATIONS, rotations))
                results["audit"][name].append(cpu_per(AUDIT_BATCHES * AUDIT_BATCH, appends))
    finally:
        use(ways["driver"])
    verdict = audit.verify(core.engine, key)
    if not verdict.intact:
        raise RuntimeError(f"the audit chain broke at {verdict.bad_seq}: {verdict.problem}")
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--quick", action="store_true", help="3 rounds")
    args = parser.parse_args()
    rounds = 3 if args.quick else max(1, args.rounds)
    out(f"hot statements benchmark — {datetime.now(timezone.utc).isoformat(timespec='seconds')}  git: {git_head()}")
    out(f"{rounds} alternating rounds; thread CPU (time.thread_time) per call or row; medians\n")
    out(f"{'backend':10} {'statement':8} {'compiled path':>14} {'driver':>10} {'driver/compiled':>16}")
    with tempfile.TemporaryDirectory(prefix="yihao-bench-hot-") as tmp:
        for name, env in backends(Path(tmp)):
            settings = load_settings({**env, "YIHAO_VAR_DIR": str(Path(tmp) / name),
                                      "YIHAO_MASTER_KEY": b64u(b"h" * 32), "YIHAO_LOG_LEVEL": "WARNING"})
            core = build_core(settings, migrate=True)
            try:
                results = measure(core, rounds)
            finally:
                core.close()
            for figure, unit in (("rotate", "µs/call"), ("audit", "µs/row")):
                base, fast = (statistics.median(results[figure][n]) for n in ("compiled", "driver"))
                out(f"{name:10} {figure:8} {base:>9.1f} {unit:<4} {fast:>6.1f} {unit:<4}"
                    f" {fast / base:>9.2f}")
    write_results("hot_statements", args.quick)
    return 0


if __name__ == "__main__":
    main()
