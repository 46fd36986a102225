"""Benchmark: what one request costs the application itself, called in-process without a network.

The wrk benchmarks (tokens.py, token_flow.py) measure whole servers, and on a shared machine their
figures move by a tenth or more between runs of the same code. This one calls the ASGI application
(`idp.app.create_app`, the edge and every layer a served request passes) directly from an event loop
in this process, on the embedded backend (SQLite file, in-process store), and reports:

    thread CPU  the event loop thread's CPU time per request (time.thread_time): min and median of
                the rounds. The audit writer's thread is not in it.
    callgrind   with --callgrind: instructions per request counted by valgrind, every thread of the
                process included (the audit writer too), as the difference between a run of
                --requests and a run of a fifth as many, so start-up cancels out. Repeatable to
                well under 1 % on the same code whatever else the machine does: the figure to
                compare commits by.

Figures:
    cc_es256    POST /token client_credentials, ES256 JWT access token (client_secret_basic)
    cc_rs256    the same, RS256
    refresh     POST /token refresh_token, each response's refresh token used next (rotation)
    introspect  POST /introspect of an ES256 access token (client_secret_basic)
    userinfo    GET /userinfo with a bearer ES256 access token

Usage:
    .venv/bin/python bench/inprocess.py                       # thread CPU, 5 rounds x 2000 requests
    .venv/bin/python bench/inprocess.py --callgrind           # and instructions (about 2 minutes a figure)
    .venv/bin/python bench/inprocess.py --figures userinfo --rounds 9
Results are written to bench/results/inprocess.txt.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import PASSWORD, PYTHON, git_head, out, write_results  # noqa: E402

FIGURES = ("cc_es256", "cc_rs256", "refresh", "introspect", "userinfo")
ISSUER = "http://127.0.0.1:8000"


class Driver:
    """The app, its lifespan started, and one figure's request, sent as a server would send it."""

    def __init__(self, var: Path, figure: str) -> None:
        os.environ.update({"YIHAO_VAR_DIR": str(var), "YIHAO_DATABASE_URL": f"sqlite:///{var}/yihao.db",
                           "YIHAO_MASTER_KEY": base64.urlsafe_b64encode(b"b" * 32).rstrip(b"=").decode(),
                           "YIHAO_REDIS_URL": "", "YIHAO_LOG_LEVEL": "WARNING", "YIHAO_ISSUER": ISSUER})
        from idp.app import create_app
        from idp.settings import load_settings
        from idp.tokens import Authentication

        self.app = create_app(load_settings())
        core = self.app.state.core
        gc.collect()
        gc.freeze()  # as the served worker does (idp.asgi)
        self.figure = figure
        self.refresh_token: str | None = None
        if figure.startswith("cc_"):
            client, secret = core.clients.create(name="bench-cc", redirect_uris=[], grant_types=["client_credentials"],
                                                 access_token_signed_response_alg=figure[3:].upper())
            self.method, self.path, self.body = "POST", "/token", b"grant_type=client_credentials"
            self.auth = _basic(client.client_id, secret)
            return
        username = f"bench-{os.getpid()}-{time.monotonic_ns()}"
        account = core.accounts.create(username, PASSWORD)
        rp, secret = core.clients.create(name="bench-rp", redirect_uris=["https://rp.example/cb"], first_party=True,
                                         grant_types=["authorization_code", "refresh_token"],
                                         scope="openid profile email offline_access",
                                         access_token_signed_response_alg="ES256", id_token_signed_response_alg="ES256")
        _handle, session = core.sessions.create(account.id, ("pwd",), "loa/1")
        auth = Authentication(account_id=account.id, auth_time=int(time.time()), amr=("pwd",), acr="loa/1",
                              sid=session.sid)
        self.auth = _basic(rp.client_id, secret)
        if figure == "refresh":
            self.refresh_token = core.refresh.issue(rp.client_id, auth, "openid profile offline_access", (), True)
            self.method, self.path = "POST", "/token"
            return
        access, _ttl = core.issuer.access_token(rp, auth, "openid profile email")
        if figure == "userinfo":
            self.method, self.path, self.body, self.auth = "GET", "/userinfo", b"", f"Bearer {access}".encode()
        else:
            self.method, self.path, self.body = "POST", "/introspect", f"token={access}".encode()

    async def start(self) -> None:
        self._lifespan: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        await self._lifespan.put({"type": "lifespan.startup"})

        async def send(message: dict[str, Any]) -> None:
            pass

        self._running = asyncio.create_task(self.app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}},
                                                     self._lifespan.get, send))
        await asyncio.sleep(0.05)

    async def stop(self) -> None:
        await self._lifespan.put({"type": "lifespan.shutdown"})
        await asyncio.wait_for(self._running, 30)

    async def one(self) -> None:
        body = self.body if self.refresh_token is None else \
            f"grant_type=refresh_token&refresh_token={self.refresh_token}".encode()
        headers = [(b"host", b"127.0.0.1:8000"), (b"authorization", self.auth)]
        if self.method == "POST":
            headers += [(b"content-type", b"application/x-www-form-urlencoded"),
                        (b"content-length", str(len(body)).encode())]
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": self.method,
                 "scheme": "http", "path": self.path, "raw_path": self.path.encode(), "query_string": b"",
                 "root_path": "", "headers": headers, "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
                 "state": {}}
        sent = False
        status, chunks = 0, []

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.Event().wait()  # a client that stays connected
            raise AssertionError("unreachable")

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            else:
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        if status != 200:
            raise RuntimeError(f"{self.figure}: {status} {b''.join(chunks)[:300]!r}")
        if self.refresh_token is not None:
            self.refresh_token = json.loads(b"".join(chunks))["refresh_token"]


def _basic(client_id: str, secret: str | None) -> bytes:
    return b"Basic " + base64.b64encode(f"{client_id}:{secret}".encode())


async def _thread_cpu(driver: Driver, requests: int, rounds: int) -> list[float]:
    await driver.start()
    try:
        for _ in range(min(300, requests)):  # warm: caches, prepared keys, the loop's first tasks
            await driver.one()
        per_request = []
        for _ in range(rounds):
            began = time.thread_time()
            for _ in range(requests):
                await driver.one()
            per_request.append((time.thread_time() - began) / requests * 1e6)
        return per_request
    finally:
        await driver.stop()


async def _fixed(driver: Driver, requests: int) -> None:
    await driver.start()
    try:
        for _ in range(requests):
            await driver.one()
    finally:
        await driver.stop()


def _instructions(figure: str, var: Path, requests: int) -> int:
    """Instructions of a whole run of `requests` (every thread), counted by callgrind."""
    with tempfile.TemporaryDirectory(prefix="yihao-bench-cg-") as tmp:
        result = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/out",
                                 PYTHON, __file__, "--child", figure, "--var", str(var), "--requests", str(requests)],
                                capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"}, timeout=3600)
    found = re.search(r"Collected : (\d+)", result.stderr)
    if result.returncode != 0 or found is None:
        raise RuntimeError(f"callgrind run failed ({result.returncode}): {result.stderr[-800:]}")
    return int(found.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--figures", default=",".join(FIGURES), help="comma-separated figures")
    parser.add_argument("--requests", type=int, default=2000, help="requests per round (default 2000)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of thread CPU (default 5)")
    parser.add_argument("--callgrind", action="store_true", help="also count instructions with valgrind")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # one callgrind run: FIGURE
    parser.add_argument("--var", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        asyncio.run(_fixed(Driver(args.var, args.child), args.requests))
        return 0
    figures = [f for f in args.figures.split(",") if f]
    unknown = set(figures) - set(FIGURES)
    if unknown:
        parser.error(f"unknown figures: {', '.join(sorted(unknown))}")
    if args.callgrind and shutil.which("valgrind") is None:
        parser.error("--callgrind needs valgrind (apt-get install valgrind)")
    out(f"in-process benchmark — {time.strftime('%Y-%m-%dT%H:%M:%S%z')}  git: {git_head()}  python {sys.version.split()[0]}")
    out(f"embedded backend (SQLite file, in-process store); ASGI app called directly; {args.rounds} rounds x "
        f"{args.requests} requests; thread CPU of the event loop thread, us per request")
    if args.callgrind:
        out(f"callgrind: instructions per request, all threads, (run of {args.requests}) - (run of "
            f"{args.requests // 5}) over their difference in requests")
    out(f"\n{'figure':12} {'min us':>8} {'median us':>10} {'rounds':<40}" + (f" {'instructions':>13}" if args.callgrind else ""))
    for figure in figures:
        with tempfile.TemporaryDirectory(prefix="yihao-bench-inproc-") as tmp:
            var = Path(tmp)
            runs = asyncio.run(_thread_cpu(Driver(var, figure), args.requests, args.rounds))
            line = (f"{figure:12} {min(runs):8.1f} {statistics.median(runs):10.1f} "
                    f"{', '.join(f'{r:.1f}' for r in runs):<40}")
            if args.callgrind:  # the same var dir: keys exist already, so no run generates any
                small, large = args.requests // 5, args.requests
                per = (_instructions(figure, var, large) - _instructions(figure, var, small)) / (large - small)
                line += f" {per:13,.0f}"
            out(line)
    write_results("inprocess", quick=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
