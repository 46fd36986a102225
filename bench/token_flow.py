"""Benchmark: full password-login authorization-code flows per second, against real `yihao serve` processes.

One flow, as a first-party confidential relying party and a brand-new browser see it:

    GET  /authorize (PKCE S256, state, nonce)        -> 303 /interaction/{uid}   (sets the browser cookie)
    GET  /interaction/{uid}                          -> 200 login page (hidden csrf_token)
    POST /interaction/{uid}/login                    -> 303 redirect_uri?code=…&state=…&iss=…   (one argon2id verify)
    POST /token (client_secret_basic, code_verifier) -> 200 access_token + id_token
    GET  /userinfo (Bearer)                          -> 200 claims

Every flow is a new browser (an empty cookie jar, a new connection), so every flow is a real password login.

Configurations: SQLite + in-process store (one worker only: the in-process store cannot be shared),
PostgreSQL + Redis with one and with two workers. Each run gets a fresh database, Redis prefix and
server process. The floor is the argon2id verify rate of one core at the configured parameters, measured
between runs (the machine's speed can drift by a tenth over the minutes a benchmark takes): each run is
compared with the higher of the floors measured just before and just after it.

Also measured: login timing for an unknown username versus a wrong password (no enumeration by
timing), and the Redis memory taken per SSO session at 100,000 sessions.

Usage:
    .venv/bin/python bench/token_flow.py             # 3 runs x 10 s per configuration (several minutes)
    .venv/bin/python bench/token_flow.py --quick     # 1 run x 3 s, a smoke check
    .venv/bin/python bench/token_flow.py --only postgres --seconds 20 --skip-memory

Talks only to 127.0.0.1. Results are also written to bench/results/token_flow.txt
(bench/results/token_flow.quick.txt for --quick).
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import hashlib
import json
import platform
import re
import secrets
import signal
import statistics
import time
from dataclasses import dataclass
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit


from harness import (CPUS, HAS_TASKSET, PASSWORD, QUIET_WAIT_SECONDS, NOISE_CORES, REDIRECT_URI, REDIS_URL,
                     USERNAME, Config, CpuSnapshot, CpuUse, Server, _kill_all_groups, _on_sigterm, b64u,
                     cpu_snapshot, event_loop_run, git_head, out, pinned, placement, redis_client,
                     redis_unlink_prefix, run_main, wait_for_quiet, write_results)

SCOPE = "openid profile email"
USERS_PER_WORKER = 8
WARMUP_SECONDS = 2.0
SESSION_TARGET_BYTES = 2048
CSRF = re.compile(r'<input type="hidden" name="csrf_token" value="([^"]*)"')


# -- the floor -----------------------------------------------------------------------------------
def argon2_floor(seconds: float, cpu: int) -> tuple[float, dict[str, int]]:
    """argon2id verifies per second on one core, single thread, at the configured parameters."""
    from argon2 import PasswordHasher

    from idp.settings import load_settings

    settings = load_settings({})  # the defaults: what a deployment runs with unless told otherwise
    params = {"m_kib": settings.argon2_memory_kib, "t": settings.argon2_time_cost, "p": settings.argon2_parallelism}
    hasher = PasswordHasher(time_cost=params["t"], memory_cost=params["m_kib"], parallelism=params["p"])
    stored = hasher.hash(PASSWORD)
    with pinned({cpu}):
        for _ in range(3):
            hasher.verify(stored, PASSWORD)  # warm the allocator and caches
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds and count < 100_000:
            hasher.verify(stored, PASSWORD)
            count += 1
        elapsed = time.perf_counter() - start
    return count / elapsed, params


# -- the load generator -----------------------------------------------------------------------------
class FlowError(Exception):
    def __init__(self, step: str, detail: str) -> None:
        super().__init__(f"{step}: {detail}")
        self.step, self.detail = step, detail


class Reply:
    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class Browser:
    """One new browser: a cookie jar and one keep-alive HTTP/1.1 connection of its own.

    Plain asyncio streams rather than httpx: httpx cost about a millisecond of the load generator's
    CPU per request, and with two workers the load generator shares their two cores (0.31 cores
    before, 0.06 now). A new browser opens a new connection, so each flow pays for one."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.cookies: dict[str, str] = {}
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> "Browser":
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.writer is not None:
            self.writer.close()

    async def request(self, method: str, target: str, headers: dict[str, str] | None = None,
                      form: dict[str, str] | None = None) -> Reply:
        assert self.reader is not None and self.writer is not None
        body = urlencode(form).encode() if form is not None else b""
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.host}:{self.port}", "Connection: keep-alive"]
        if self.cookies:
            lines.append("Cookie: " + "; ".join(f"{k}={v}" for k, v in self.cookies.items()))
        if form is not None:
            lines += ["Content-Type: application/x-www-form-urlencoded", f"Content-Length: {len(body)}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        head = (await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 30.0)).decode("latin-1")
        status_line, *header_lines = head[:-4].split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        reply_headers: dict[str, str] = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            name, value = name.strip().lower(), value.strip()
            if name == "set-cookie":
                pair = value.split(";", 1)[0]
                key, _, cookie = pair.partition("=")
                if "max-age=0" in value.lower() or not cookie:
                    self.cookies.pop(key.strip(), None)
                else:
                    self.cookies[key.strip()] = cookie
            reply_headers[name] = value
        if reply_headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                chunks.append(await self.reader.readexactly(size + 2))
                if size == 0:
                    break
            payload = b"".join(c[:-2] for c in chunks)
        else:
            payload = await self.reader.readexactly(int(reply_headers.get("content-length", "0")))
        return Reply(status, reply_headers, payload)


def _expect(response: Reply, step: str, status: int) -> None:
    if response.status != status:
        raise FlowError(step, f"HTTP {response.status}, expected {status}: {response.text[:160]!r}")


async def one_flow(server: Server, basic: str) -> None:
    """One complete password-login code flow by a new browser (no cookie, no SSO session)."""
    verifier = secrets.token_urlsafe(48)
    state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    query = urlencode({
        "response_type": "code", "client_id": server.client_id, "redirect_uri": REDIRECT_URI, "scope": SCOPE,
        "state": state, "nonce": nonce, "code_challenge_method": "S256",
        "code_challenge": b64u(hashlib.sha256(verifier.encode()).digest()),
    })
    address = urlsplit(server.url)
    async with Browser(address.hostname or "127.0.0.1", address.port or 80) as http:
        response = await http.request("GET", "/authorize?" + query)
        _expect(response, "authorize", 303)
        location = response.headers.get("location", "")
        if not location.startswith("/interaction/"):
            raise FlowError("authorize", f"redirect to {location[:80]!r}, expected /interaction/…")

        page = await http.request("GET", location)
        _expect(page, "login page", 200)
        match = CSRF.search(page.text)
        if not match:
            raise FlowError("login page", "no csrf_token in the page")

        response = await http.request("POST", location + "/login", form={
            "username": USERNAME, "password": PASSWORD, "csrf_token": unescape(match.group(1))})
        _expect(response, "login", 303)
        target = response.headers.get("location", "")
        if not target.startswith(REDIRECT_URI + "?"):
            raise FlowError("login", f"redirect to {target[:80]!r}, expected the redirect_uri")
        params = {k: v[0] for k, v in parse_qs(urlsplit(target).query).items()}
        if params.get("state") != state or not params.get("code"):
            raise FlowError("login", f"callback without code or with the wrong state: {sorted(params)}")

        response = await http.request("POST", "/token", headers={"Authorization": basic}, form={
            "grant_type": "authorization_code", "code": params["code"], "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier})
        _expect(response, "token", 200)
        body = json.loads(response.body)
        if not body.get("access_token") or not body.get("id_token"):
            raise FlowError("token", f"no access_token/id_token in {sorted(body)}")

        response = await http.request("GET", "/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"})
        _expect(response, "userinfo", 200)
        if not json.loads(response.body).get("sub"):
            raise FlowError("userinfo", "no sub")


@dataclass
class LoadResult:
    flows: int
    seconds: float
    failures: dict[str, int]
    latencies: list[float]
    cpu: CpuUse  # measured window
    warmup_flows: int

    @property
    def rate(self) -> float:
        return self.flows / self.seconds


async def run_load(server: Server, users: int, seconds: float, warmup: float) -> LoadResult:
    basic = "Basic " + base64.b64encode(f"{server.client_id}:{server.client_secret}".encode()).decode()
    failures: dict[str, int] = {}
    latencies: list[float] = []
    counts = {"window": 0, "warmup": 0}
    start = time.monotonic()
    window_start, window_end = start + warmup, start + warmup + seconds
    stop = asyncio.Event()
    snaps: dict[str, CpuSnapshot] = {}

    async def user(index: int) -> None:
        # Ramp up during the warm-up: users arrive one by one rather than all in the same millisecond.
        await asyncio.sleep(index * ramp)
        for _ in range(1_000_000):  # bounded; the clock stops it long before
            if stop.is_set():
                return
            began = time.monotonic()
            try:
                await one_flow(server, basic)
                ok, reason = True, ""
            except FlowError as exc:
                ok, reason = False, f"{exc.step}: {exc.detail}"
            except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError, KeyError) as exc:
                ok, reason = False, f"transport: {type(exc).__name__}: {str(exc)[:120]}"
            done = time.monotonic()
            if done >= window_end:
                return  # finished after the window: not counted
            if not ok:
                failures[reason] = failures.get(reason, 0) + 1
                await asyncio.sleep(0.05)  # do not spin on a broken server
            elif done >= window_start:
                counts["window"] += 1
                latencies.append(done - began)
            else:
                counts["warmup"] += 1

    async def clock() -> None:
        await asyncio.sleep(max(0.0, window_start - time.monotonic()))
        snaps["start"] = cpu_snapshot(server.pgid, server.database)
        await asyncio.sleep(max(0.0, window_end - time.monotonic()))
        snaps["end"] = cpu_snapshot(server.pgid, server.database)
        stop.set()

    ramp = min(0.1, warmup * 0.5 / max(1, users))
    tasks = [asyncio.create_task(user(i)) for i in range(users)]
    timer = asyncio.create_task(clock())
    await timer
    _done, pending = await asyncio.wait(tasks, timeout=35.0)  # in-flight flows end or time out
    for task in pending:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return LoadResult(flows=counts["window"], seconds=seconds, failures=failures, latencies=latencies,
                      cpu=CpuUse.between(snaps["start"], snaps["end"]), warmup_flows=counts["warmup"])


# -- login timing: unknown username versus wrong password -------------------------------------------
async def login_timing(server: Server, samples: int) -> tuple[float, float, int]:
    """Median seconds of a failed login POST: (unknown username, wrong password); interleaved, sequential."""
    address = urlsplit(server.url)
    async with Browser(address.hostname or "127.0.0.1", address.port or 80) as http:
        query = urlencode({"response_type": "code", "client_id": server.client_id, "redirect_uri": REDIRECT_URI,
                           "scope": SCOPE, "state": "s", "nonce": "n", "code_challenge_method": "S256",
                           "code_challenge": b64u(hashlib.sha256(b"v" * 43).digest())})
        response = await http.request("GET", "/authorize?" + query)
        _expect(response, "authorize", 303)
        location = response.headers["location"]
        page = await http.request("GET", location)
        _expect(page, "login page", 200)
        csrf = unescape(CSRF.search(page.text).group(1))  # type: ignore[union-attr]
        cases = {"unknown": f"nobody-{secrets.token_hex(4)}", "wrong": USERNAME}
        times: dict[str, list[float]] = {"unknown": [], "wrong": []}
        failures = 0
        for i in range(samples * 2 + 6):  # the first 6 warm up; the failed form keeps the interaction alive
            which = "unknown" if i % 2 == 0 else "wrong"
            began = time.perf_counter()
            response = await http.request("POST", location + "/login", form={
                "username": cases[which], "password": "not the password!", "csrf_token": csrf})
            took = time.perf_counter() - began
            if response.status != 200:
                failures += 1
                continue
            if i >= 6:
                times[which].append(took)
    return statistics.median(times["unknown"]), statistics.median(times["wrong"]), failures


def session_memory(count: int) -> dict[str, float]:
    from idp.sessions import Sessions
    from idp.settings import load_settings
    from idp.store.ephemeral import open_store

    prefix = f"yihao-bench-mem:{secrets.token_hex(6)}:"
    settings = load_settings({"YIHAO_REDIS_URL": REDIS_URL, "YIHAO_REDIS_PREFIX": prefix})
    raw = redis_client()
    store = open_store(REDIS_URL, prefix=prefix)
    try:
        sessions = Sessions(store, settings)
        account_ids = [secrets.token_hex(16) for _ in range(1000)]  # the shape of Account.id (uuid4 hex)
        before = int(raw.info("memory")["used_memory"])
        started = time.perf_counter()
        for i in range(count):
            sessions.create(account_ids[i % len(account_ids)], ("pwd",), "loa/1")
        took = time.perf_counter() - started
        after = int(raw.info("memory")["used_memory"])
        keys = sum(1 for _ in raw.scan_iter(match=prefix + "*", count=5000))
        sample_key = next(raw.scan_iter(match=prefix + "sess:*", count=100))
        value_bytes = len(raw.get(sample_key) or b"")
        usage = raw.memory_usage(sample_key) or 0
        return {"count": count, "keys": keys, "before": before, "after": after, "per": (after - before) / count,
                "seconds": took, "value_bytes": value_bytes, "key_bytes": len(sample_key), "memory_usage": usage}
    finally:
        store.close()
        redis_unlink_prefix(prefix)
        raw.close()


def bracketing_floor(seconds: float, cpu: int, label: str) -> float:
    """One floor measurement between runs (no server is running then)."""
    busy = wait_for_quiet(QUIET_WAIT_SECONDS)
    if busy:
        out(f"   WARNING floor {label}: {busy}")
    floor, _params = argon2_floor(seconds, cpu)
    return floor


def run_config(config: Config, runs: int, seconds: float, timing_samples: int,
               floor_seconds: float, floor_cpu: int) -> dict[str, Any]:
    """`runs` runs of one configuration. The floor is measured before the first run and after each
    one: a run is compared with the higher of the two floors around it (the stricter bar), so the
    machine's speed drifting over the minutes a benchmark takes does not land in its ratio."""
    server_cpus, loadgen_cpus, where = placement(config.workers)
    users = USERS_PER_WORKER * config.workers
    out(f"\n== {config.label}, {config.workers} worker(s), {users} virtual users; {where}")
    if config.backend == "sqlite":
        out("   (SQLite + in-process store: one worker only — the in-process store cannot be shared between workers)")
    rates: list[float] = []
    floors: list[float] = []
    timing: tuple[float, float, int] | None = None
    before = bracketing_floor(floor_seconds, floor_cpu, "before run 1")
    for run in range(1, runs + 1):
        busy = wait_for_quiet(QUIET_WAIT_SECONDS)
        if busy:
            out(f"   WARNING run {run}: {busy}; the figures below may be low")
        # The login-timing figure posts 100+ failed logins from one address at one account: with the
        # throttle's defaults it would time lock answers, not the argon2 path it is there to compare.
        server = Server(config.backend, config.workers, server_cpus,
                        extra_env={"YIHAO_THROTTLE_ACCOUNT_FAILURES": "100000",
                                   "YIHAO_THROTTLE_ADDRESS_FAILURES": "100000"})
        try:
            server.start()
            with pinned(loadgen_cpus):
                result: LoadResult = event_loop_run(run_load(server, users, seconds, WARMUP_SECONDS))
            if server._process.poll() is not None:
                out(f"   run {run}: the server DIED during the run:\n{server.log_tail()}")
            if config.workers == 1 and run == 1 and timing_samples:
                with pinned(loadgen_cpus):
                    timing = event_loop_run(login_timing(server, timing_samples))
        finally:
            server.stop()
        after = bracketing_floor(floor_seconds, floor_cpu, f"after run {run}")
        rates.append(result.rate)
        floors.append(max(before, after))
        lat = sorted(result.latencies)
        p50 = statistics.median(lat) * 1000 if lat else float("nan")
        p95 = lat[min(len(lat) - 1, int(len(lat) * 0.95))] * 1000 if lat else float("nan")
        nfail = sum(result.failures.values())
        cpu = result.cpu
        per_flow = f"{cpu.server / result.rate * 1000:.1f} ms" if result.rate else "n/a"
        out(f"   run {run}: {result.rate:7.2f} flows/s  ({result.flows} flows in {result.seconds:.0f} s, "
            f"{nfail} failures; flow latency p50 {p50:.0f} ms, p95 {p95:.0f} ms; server CPU per flow {per_flow})")
        out(f"          floor around this run: {floors[-1]:.1f} argon2id verifies/s on CPU {floor_cpu} (before {before:.1f}, "
            f"after {after:.1f}; the higher is the bar); ratio {result.rate / floors[-1]:.2f}")
        out(f"          {cpu.describe(config.workers)}; load generator = {cpu.loadgen:.0%} of one core (process_time / wall)"
            + (f"  [NOISY: {cpu.other:.2f} cores used by other processes]" if cpu.other > NOISE_CORES else ""))
        for reason, n in sorted(result.failures.items(), key=lambda kv: -kv[1])[:10]:
            out(f"      FAILURE x{n}: {reason}")
        before = after
    return {"config": config, "rates": rates, "median": statistics.median(rates), "timing": timing,
            "floor": statistics.median(floors), "ratio": statistics.median(r / f for r, f in zip(rates, floors))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="measured window per run (default 10)")
    parser.add_argument("--runs", type=int, default=3, help="runs per configuration (default 3; the median is reported)")
    parser.add_argument("--only", choices=("sqlite", "postgres"), help="one backend only")
    parser.add_argument("--skip-memory", action="store_true", help="skip the Redis memory-per-session measurement")
    parser.add_argument("--sessions", type=int, default=100_000, help="SSO sessions for the memory figure")
    parser.add_argument("--timing-samples", type=int, default=50, help="failed-login POSTs per case (default 50)")
    parser.add_argument("--quick", action="store_true", help="1 run of 3 s per configuration (smoke check)")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.seconds = 1, 3.0
        args.timing_samples = min(args.timing_samples, 20)
        args.sessions = min(args.sessions, 10_000)
    args.runs = max(1, min(args.runs, 20))
    args.seconds = max(1.0, min(args.seconds, 600.0))
    args.sessions = max(100, min(args.sessions, 1_000_000))
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C works even if started with SIGINT ignored

    from idp.settings import load_settings

    defaults = load_settings({})
    out(f"token_flow benchmark — {dt.datetime.now().astimezone().isoformat(timespec='seconds')}")
    out(f"host: {platform.node()}  python {platform.python_version()}  CPUs available: {CPUS}  "
        f"taskset: {'yes' if HAS_TASKSET else 'no'}  git: {git_head()}")
    out(f"flow: authorize(PKCE S256) -> login page -> POST login (argon2id) -> 303 code -> /token "
        f"(client_secret_basic) -> /userinfo; first-party client, fresh cookie jar per flow")
    out(f"runs: {args.runs} x {args.seconds:.0f} s measured (+{WARMUP_SECONDS:.0f} s warm-up), "
        f"{USERS_PER_WORKER} virtual users per worker; threads per worker {defaults.threads}")

    floor_cpu = CPUS[0]
    floor_seconds = 3.0 if args.quick else 5.0
    out(f"floor: argon2id verifies/s on CPU {floor_cpu}, one thread, {floor_seconds:.0f} s each "
        f"(m={defaults.argon2_memory_kib} KiB, t={defaults.argon2_time_cost}, p={defaults.argon2_parallelism} — "
        f"the configured defaults), measured before the first run of each configuration and after every run; "
        f"each run's ratio is against the higher of the two floors around it")

    configs = []
    if args.only in (None, "sqlite"):
        configs.append(Config("sqlite", 1))
    if args.only in (None, "postgres"):
        configs += [Config("postgres", 1), Config("postgres", 2)]

    results: list[dict[str, Any]] = []
    memory: dict[str, float] | None = None
    try:
        for config in configs:
            results.append(run_config(config, args.runs, args.seconds, args.timing_samples, floor_seconds, floor_cpu))
        if not args.skip_memory:
            out(f"\n== Redis memory per SSO session ({args.sessions:,} sessions via idp.sessions.Sessions.create)")
            memory = session_memory(args.sessions)
    finally:
        _kill_all_groups()

    # -- the table --------------------------------------------------------------------------------
    out("\n== Summary")
    header = (f"{'backend':<16}{'workers':>8}  {'flows/s(median)':>15}  {'runs':<26}{'floor(argon2/s, 1 core)':>24}"
              f"  {'ratio-to-floor':>14}  target")
    out(header)
    out("-" * len(header))
    one_worker: dict[str, float] = {}
    for r in results:
        c: Config = r["config"]
        runs_text = ", ".join(f"{x:.1f}" for x in r["rates"])
        floor, ratio = r["floor"], r["ratio"]
        if c.workers == 1:
            one_worker[c.backend] = r["median"]
            verdict = f"1 worker >= 0.80 x floor: {'PASS' if ratio >= 0.80 else 'FAIL'} ({ratio:.2f})"
        else:
            base = one_worker.get(c.backend)
            if base:
                scale = r["median"] / base
                verdict = f"2 workers >= 1.7 x 1 worker: {'PASS' if scale >= 1.7 else 'FAIL'} ({scale:.2f} x)"
            else:
                verdict = "2 workers >= 1.7 x 1 worker: (no one-worker figure)"
        out(f"{c.label:<16}{c.workers:>8}  {r['median']:>15.2f}  {runs_text:<26}{floor:>24.1f}  {ratio:>14.2f}  {verdict}")
    if any(r["config"].workers == 2 for r in results):
        out("note: with 2 workers the server uses both cores and the load generator shares them "
            "(see 'load generator CPU' per run); with 1 worker the server has CPU 0 and the load generator CPU 1.")
    out("note: the SQLite + in-process store configuration runs one worker only (the store is process-private).")
    out("note: floor = the median of the runs' bars (each the higher of the floors measured just before and just "
        "after the run); ratio-to-floor = the median of the runs' own ratios to their bars.")

    for r in results:
        if r["timing"] is not None:
            unknown, wrong, failed = r["timing"]
            out(f"login timing ({r['config'].label}, 1 worker, {args.timing_samples} POSTs each, median): "
                f"unknown username {unknown * 1000:.1f} ms, wrong password {wrong * 1000:.1f} ms, "
                f"ratio unknown/wrong {unknown / wrong:.3f} (expected ~1.0)"
                + (f"; {failed} unexpected statuses" if failed else ""))
    if memory is not None:
        verdict = "PASS" if memory["per"] <= SESSION_TARGET_BYTES else "FAIL"
        out(f"redis memory: {memory['per']:.0f} bytes per SSO session at {memory['count']:,} sessions "
            f"(used_memory {memory['before']:,} -> {memory['after']:,}; {memory['keys']:,} keys; value "
            f"{memory['value_bytes']} B, key {memory['key_bytes']} B, MEMORY USAGE of one key {memory['memory_usage']} B; "
            f"written in {memory['seconds']:.1f} s) — target <= {SESSION_TARGET_BYTES} B: {verdict}")

    write_results("token_flow", args.quick)
    return 0


if __name__ == "__main__":
    run_main(main)
