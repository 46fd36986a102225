"""Benchmark: token exchanges per second (RFC 8693), beside the floor of one ES256 verify + one ES256 sign.

One exchange at the city is: client authentication, the partner rule (cached), the subject token's
ES256 signature verified against the upstream's cached key set, its claims checked, its jti taken in
the store (single use), the link looked up (SQL), the account read (SQL), and an ES256 access token
signed. The floor, measured in the same run on the server's core, is one ES256 verification plus one
ES256 signature through idp.jose (the same code path), i.e. the work no exchange can avoid.

Set-up: a stand-in upstream in this process serves discovery and its key set (fetched once by the
city, then cached); the city is a real `yihao serve` (bench/harness.Server) with the upstream
registered, linked people, and a partner client with a rule. Every request carries a distinct subject
token minted beforehand (a jti is single use). The load generator is Python (asyncio + httpx, keep-alive
connections) pinned to the other core; its own CPU use is printed.

Usage:
    .venv/bin/python bench/federation.py            # 3 runs x 8 s per backend
    .venv/bin/python bench/federation.py --quick    # 1 run x 4 s per backend (well under 2 minutes)
    .venv/bin/python bench/federation.py --only sqlite

Talks only to 127.0.0.1. Results are written to bench/results/federation.txt (federation.quick.txt).
"""
from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import platform
import statistics
import threading
import time
import uuid
from typing import Any

import httpx

from harness import (CPUS, HAS_TASKSET, CpuUse, Server, cpu_snapshot, free_port, git_head, out, pinned, run_main,
                     write_results)

EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS = "urn:ietf:params:oauth:token-type:access_token"
API = "https://api.bench.example"
PEOPLE = 50
CONNECTIONS = 32


def floor(key: Any, seconds: float) -> tuple[float, float, float]:
    """(verify/s, sign/s, verify+sign/s) through idp.jose with this ES256 key, on this core."""
    from idp import jose

    claims = {"iss": "https://bench", "sub": "s", "aud": "a", "exp": 2_000_000_000, "iat": 1, "jti": "j"}
    token = jose.sign(claims, key)
    public = {key.get("kid"): key}

    def rate(fn: Any) -> float:
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            for _ in range(200):
                fn()
            count += 200
        return count / (time.perf_counter() - start)

    verify = rate(lambda: jose.verify(token, public.get, ("ES256",)))
    sign = rate(lambda: jose.sign(claims, key))
    return verify, sign, 1 / (1 / verify + 1 / sign)


class Upstream:
    """Discovery and JWKS of a stand-in upstream, served from a thread; it signs the subject tokens."""

    def __init__(self) -> None:
        import uvicorn
        from starlette.applications import Starlette
        from starlette.responses import JSONResponse, Response
        from starlette.routing import Route

        from idp.keys import generate_key

        self.key = generate_key("ES256")
        port = free_port()
        self.issuer = f"http://127.0.0.1:{port}"
        meta = {"issuer": self.issuer, "authorization_endpoint": self.issuer + "/authorize",
                "token_endpoint": self.issuer + "/token", "jwks_uri": self.issuer + "/jwks"}
        app = Starlette(routes=[
            Route("/.well-known/openid-configuration", lambda r: JSONResponse(meta)),
            Route("/jwks", lambda r: JSONResponse({"keys": [self.key.export_public(as_dict=True)]})),
            Route("/healthz", lambda r: Response("ok")),
        ])
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None,
                                                    access_log=False, lifespan="off"))
        threading.Thread(target=self.server.run, daemon=True).start()
        while not self.server.started:
            time.sleep(0.02)

    def tokens(self, count: int, audience: str) -> list[str]:
        from idp import jose

        now = int(time.time())
        return [jose.sign({"iss": self.issuer, "sub": f"person-{i % PEOPLE}", "aud": audience, "iat": now,
                           "exp": now + 3600, "jti": uuid.uuid4().hex}, self.key) for i in range(count)]


def prepare(upstream: Upstream, partner: dict[str, str]) -> Any:
    def run(server: Server) -> None:
        from idp.core import build_core
        from idp.settings import load_settings

        core = build_core(load_settings(server.env))
        try:
            core.federation.upstreams.add(slug="bench", name="Bench upstream", issuer=upstream.issuer,
                                          client_id="city", client_secret=None, algorithms=["ES256"])
            for i in range(PEOPLE):
                profile = core.accounts.create(f"fed-bench-{i}", "bench password 123")
                core.federation.links.create("bench", f"person-{i}", profile.id, "login")
            client, secret = core.clients.create(name="bench partner", redirect_uris=[], grant_types=[EXCHANGE])
            core.federation.partners.set(client.client_id, subject_issuers=[upstream.issuer],
                                         token_types=["access_token"], audiences=[API])
            partner.update(client_id=client.client_id, secret=secret or "")
        finally:
            core.close()

    return run


async def load(url: str, auth: tuple[str, str], tokens: list[str], seconds: float) -> tuple[int, int, list[float]]:
    """Exchanges for `seconds` over CONNECTIONS keep-alive connections: (ok, bad, latencies in ms)."""
    ok = bad = 0
    latencies: list[float] = []
    stop = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
    async with httpx.AsyncClient(limits=limits, timeout=10.0, auth=auth) as http:
        async def worker() -> None:
            nonlocal ok, bad
            while time.monotonic() < stop and tokens:
                token = tokens.pop()
                start = time.perf_counter()
                response = await http.post(url, data={"grant_type": EXCHANGE, "subject_token": token,
                                                       "subject_token_type": ACCESS})
                latencies.append((time.perf_counter() - start) * 1000)
                if response.status_code == 200 and "access_token" in response.text:
                    ok += 1
                else:
                    bad += 1
        await asyncio.gather(*(worker() for _ in range(CONNECTIONS)))
    return ok, bad, latencies


def measure(backend: str, upstream: Upstream, runs: int, seconds: float) -> tuple[list[float], list[float]]:
    """Exchanges per second of wall time, and per second of server CPU (fair on a shared machine)."""
    partner: dict[str, str] = {}
    server = Server(backend, 1, "0" if HAS_TASKSET and len(CPUS) > 1 else None,
                    extra_env={"YIHAO_ACCESS_TOKEN_ALG": "ES256"}, prepare=prepare(upstream, partner))
    server.start()
    rates: list[float] = []
    per_core: list[float] = []
    try:
        auth = (partner["client_id"], partner["secret"])
        url = server.url + "/token"
        # warm-up: the city fetches the upstream's keys, the pools fill
        asyncio.run(load(url, auth, upstream.tokens(300, server.url), 1.0))
        for run in range(1, runs + 1):
            tokens = upstream.tokens(int(seconds * 4000), server.url)
            before = cpu_snapshot(server.pgid, server.database)
            with pinned({CPUS[-1]} if len(CPUS) > 1 else None):
                started = time.monotonic()
                ok, bad, latencies = asyncio.run(load(url, auth, tokens, seconds))
                wall = time.monotonic() - started
            use = CpuUse.between(before, cpu_snapshot(server.pgid, server.database))
            rate = ok / wall
            rates.append(rate)
            per_core.append(rate / max(use.server, 1e-3))
            q = statistics.quantiles(latencies, n=100) if len(latencies) > 100 else [0.0] * 99
            out(f"   run {run}: {rate:7.0f} exchanges/s  p50 {q[49]:6.1f} ms  p99 {q[98]:6.1f} ms  "
                f"server {use.server:.2f} cores, load generator {use.loadgen:.2f} cores, postgres {use.postgres:.2f}, "
                f"redis {use.redis:.2f}, other {use.other:.2f}" + (f"  [{bad} failed]" if bad else ""))
    finally:
        server.stop()
    return rates, per_core


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", choices=("sqlite", "postgres"))
    args = parser.parse_args()
    runs, seconds = (1, 4.0) if args.quick else (3, 8.0)
    out(f"federation benchmark — {dt.datetime.now(dt.timezone.utc).isoformat(timespec='seconds')}")
    out(f"host: {platform.node()}  python {platform.python_version()}  CPUs available: {CPUS}  git: {git_head()}")
    out(f"load: Python asyncio + httpx, {CONNECTIONS} keep-alive connections, {runs} x {seconds:.0f} s per backend; "
        "server pinned to CPU 0, load generator to the last CPU")
    upstream = Upstream()
    with pinned({CPUS[0]}):
        started, cpu = time.monotonic(), time.process_time()
        verify, sign, both = floor(upstream.key, 1.0 if args.quick else 3.0)
        share = (time.process_time() - cpu) / (time.monotonic() - started)  # of CPU 0 we got: < 1 when shared
    out(f"floor on CPU {CPUS[0]} (idp.jose): ES256 verify {verify:.0f}/s, ES256 sign {sign:.0f}/s, "
        f"one verify + one sign {both:.0f}/s with {share:.2f} of the core, {both / share:.0f}/s per core-second")
    for backend in ("sqlite", "postgres"):
        if args.only and backend != args.only:
            continue
        out(f"\n== city on {backend}{'+memory' if backend == 'sqlite' else '+redis'}, 1 worker")
        rates, per_core = measure(backend, upstream, runs, seconds)
        median, core_median = statistics.median(rates), statistics.median(per_core)
        out(f"   median {median:.0f} exchanges/s = {median / both:.1%} of the floor (one verify + one sign, "
            f"{both:.0f}/s); per server core-second {core_median:.0f}/s = {core_median / (both / share):.1%} "
            f"of the floor per core-second")
    write_results("federation", args.quick)
    return 0


if __name__ == "__main__":
    run_main(main)
