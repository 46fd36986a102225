"""Benchmark: token endpoints per second, Yihao side by side with node-oidc-provider in the same run.

Figures (each over keep-alive connections, wrk as the load generator):
    cc_es256    POST /token grant_type=client_credentials, JWT access token signed ES256 (client_secret_basic)
    cc_rs256    the same, RS256
    refresh     POST /token grant_type=refresh_token, rotating: each response's refresh_token is used next
    introspect  POST introspection_endpoint (RFC 7662, client_secret_basic), token = an active access token
    userinfo    GET  userinfo_endpoint with a bearer access token
    discovery   GET  /.well-known/openid-configuration
    jwks        GET  jwks_uri

The peer is node-oidc-provider (bench/peer: pinned version, one process, in-memory adapter) configured for
the same grants and algorithms; `npm ci` installs it on first use. Each server is pinned to CPU 0 and
wrk to CPU 1; Yihao and the peer are measured alternately, figure by figure, run by run, and each figure
is printed as the median of the runs with its ratio to the peer's. The floor beside a figure is the
JWS operation that bounds it, on one core: jwcrypto through idp.jose, and raw `cryptography`.

Differences that are the peer's design, not the benchmark's: its userinfo and introspection take its
opaque access token (one adapter read) where Yihao's take its JWT (one signature verification); its
refresh grant answers with an opaque access token and an ES256 ID token, Yihao's with whatever its
refresh grant issues (printed at set-up).

Configurations: SQLite + in-process store (1 worker), PostgreSQL + Redis with 1 and 2 workers (2 workers
take both cores and share them with wrk; their peer column repeats the peer's PostgreSQL 1-worker
medians: the target compares one Yihao worker with one peer process). Tail latency: cc_es256 with
256 connections for 30 s on each 1-worker configuration and on the peer.

Usage:
    .venv/bin/python bench/tokens.py                  # 3 runs x 5 s per figure (about 13 minutes)
    .venv/bin/python bench/tokens.py --quick          # 1 run x 2 s, tail 5 s (about 2 minutes)
    .venv/bin/python bench/tokens.py --only sqlite --figures cc_es256,jwks --profile

Talks only to 127.0.0.1. Results are written to bench/results/tokens.txt (tokens.quick.txt for --quick).
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import hashlib
import json
import os
import platform
import re
import resource
import secrets
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from html import unescape
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import httpx

from harness import (CPUS, HAS_TASKSET, NOISE_CORES, PASSWORD, PYTHON, QUIET_WAIT_SECONDS, REDIRECT_URI, ROOT,
                     USERNAME, Config, CpuUse, Server, _groups, _kill_all_groups, _kill_group, _on_sigterm,
                     _proc_cpu_seconds,
                     b64u, cpu_snapshot, event_loop_run, free_port, git_head, out, placement, run_main,
                     wait_for_quiet, wait_until_up, write_results)


PEER_DIR = ROOT / "bench" / "peer"
LUA = ROOT / "bench" / "wrk" / "load.lua"
SCOPE = "openid profile email offline_access"
CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')
FORM_ACTION = re.compile(r'<form method="post" action="([^"]+)"')


@dataclass(frozen=True)
class Figure:
    name: str
    title: str
    floor: str | None  # the JWS operation that bounds it: "ES256 sign", "RS256 sign", "ES256 verify"
    target: float  # Yihao (1 worker) / peer (1 process)


FIGURES = (
    Figure("cc_es256", "client_credentials grants/s, ES256 JWT", "ES256 sign", 1.1),
    Figure("cc_rs256", "client_credentials grants/s, RS256 JWT", "RS256 sign", 1.0),
    Figure("refresh", "refresh grants/s (rotating)", "ES256 sign", 1.1),
    Figure("introspect", "introspections/s", "ES256 verify", 1.1),
    Figure("userinfo", "userinfo calls/s", "ES256 verify", 1.1),
    Figure("discovery", "discovery GETs/s", None, 1.1),
    Figure("jwks", "JWKS GETs/s", None, 1.1),
)
BY_NAME = {f.name: f for f in FIGURES}
IDLE_LEAVES = ("Condition.wait (threading.py)", "select (selectors.py)", "Queue.get (queue.py)")


# -- requests: what wrk sends for a figure ---------------------------------------------------------
@dataclass
class Load:
    """One figure's request against one target; `missing` says why it cannot be measured."""

    url: str = ""
    method: str = "GET"
    body: str | None = None
    auth: str | None = None
    tokens: list[str] | None = None  # refresh mode: the pool of live refresh tokens
    expect: str | None = None  # text every 200 response must contain
    missing: str | None = None


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


@dataclass
class Target:
    """A running provider and how to load it: Yihao or the peer."""

    name: str
    url: str
    pgid: int
    cc: dict[str, tuple[str, str]] = field(default_factory=dict)  # alg -> (client_id, secret)
    rp: tuple[str, str] = ("", "")
    loads: dict[str, Load] = field(default_factory=dict)
    mint_access_token: Callable[[], str] | None = None  # a fresh access token for userinfo / introspection
    access_token: str = ""
    database: str | None = None
    workers: int = 1


# -- set-up: the code flow that yields refresh tokens, on either provider --------------------------
async def code_flow(http: httpx.AsyncClient, authorize: str, token_url: str, client: tuple[str, str],
                    extra: dict[str, str]) -> dict[str, Any]:
    """Authorize (logging in and consenting on Yihao's pages when asked), then exchange the code."""
    verifier = secrets.token_urlsafe(48)
    state = secrets.token_urlsafe(12)
    query = urlencode({"response_type": "code", "client_id": client[0], "redirect_uri": REDIRECT_URI, "scope": SCOPE,
                       "state": state, "nonce": secrets.token_urlsafe(12), "prompt": "consent",
                       "code_challenge_method": "S256",
                       "code_challenge": b64u(hashlib.sha256(verifier.encode()).digest()), **extra})
    response = await http.get(f"{authorize}?{query}")
    for _step in range(8):
        if response.status_code in (302, 303):
            location = urljoin(str(response.url), response.headers["location"])
            if location.startswith(REDIRECT_URI):
                break
            response = await http.get(location)
            continue
        if response.status_code != 200:
            raise RuntimeError(f"code flow: HTTP {response.status_code} at {response.url}: {response.text[:200]}")
        page = response.text
        csrf, action = CSRF.search(page), FORM_ACTION.search(page)
        if not csrf or not action:
            raise RuntimeError(f"code flow: a page without a form at {response.url}")
        form = {"csrf_token": unescape(csrf.group(1))}
        if 'name="password"' in page:
            form.update(username=USERNAME, password=PASSWORD)
        else:
            form["action"] = "approve"
        response = await http.post(urljoin(str(response.url), unescape(action.group(1))), data=form)
    else:
        raise RuntimeError("code flow: too many steps")
    params = {k: v[0] for k, v in parse_qs(urlsplit(response.headers["location"]).query).items()}
    if params.get("state") != state or "code" not in params:
        raise RuntimeError(f"code flow: callback without a code: {sorted(params)}")
    response = await http.post(token_url, headers={"Authorization": basic(*client)}, data={
        "grant_type": "authorization_code", "code": params["code"], "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier})
    if response.status_code != 200:
        raise RuntimeError(f"code exchange: HTTP {response.status_code}: {response.text[:200]}")
    return response.json()


async def refresh_tokens(target: Target, metadata: dict[str, Any], count: int,
                         extra: dict[str, str]) -> tuple[list[str], dict[str, Any]]:
    """`count` refresh tokens of `count` separate grants (families), and one token response to describe."""
    found: list[str] = []
    sample: dict[str, Any] = {}

    async def user(share: int) -> None:
        async with httpx.AsyncClient(follow_redirects=False, timeout=30.0) as http:
            for _ in range(share):
                body = await code_flow(http, metadata["authorization_endpoint"], metadata["token_endpoint"],
                                       target.rp, extra)
                sample.update(body)
                if body.get("refresh_token"):
                    found.append(body["refresh_token"])

    # One flow first: it records the consent. Concurrent first consents of one account to one client
    # race to insert the same row (a 500 from Yihao's consent POST, seen here).
    await user(1)
    users, rest = 8, count - 1
    await asyncio.gather(*(user(rest // users + (i < rest % users)) for i in range(users)))
    return found, sample


def describe_token_response(body: dict[str, Any]) -> str:
    parts = []
    for name in ("access_token", "id_token", "refresh_token"):
        value = body.get(name)
        if not value:
            continue
        if value.count(".") == 2:
            header = json.loads(base64.urlsafe_b64decode(value.split(".")[0] + "=="))
            parts.append(f"{name} JWT {header.get('alg')}")
        else:
            parts.append(f"{name} opaque")
    return ", ".join(parts) or "no tokens"


# -- Yihao --------------------------------------------------------------------------------------------
def prepare_yihao(server: Server) -> None:
    """In-process set-up against the server's own database and master key: the clients the figures use."""
    from idp.core import build_core
    from idp.settings import load_settings

    core = build_core(load_settings(server.env))
    try:
        core.keys.ensure()
        made = {}
        for alg in ("ES256", "RS256"):
            client, secret = core.clients.create(name=f"bench-cc-{alg}", redirect_uris=[],
                                                 grant_types=["client_credentials"],
                                                 access_token_signed_response_alg=alg)
            made[alg] = (client.client_id, secret)
        rp, secret = core.clients.create(name="bench-rp", redirect_uris=[REDIRECT_URI], first_party=True,
                                         grant_types=["authorization_code", "refresh_token"], scope=SCOPE,
                                         id_token_signed_response_alg="ES256",
                                         access_token_signed_response_alg="ES256")
        server.bench = {"cc": made, "rp": (rp.client_id, secret)}  # type: ignore[attr-defined]
    finally:
        core.close()


def yihao_minter(server: Server) -> tuple[Callable[[], str], Callable[[], None]]:
    """Mints access tokens for the bench account in-process (same database and master key as the server)."""
    from idp.core import build_core
    from idp.settings import load_settings
    from idp.tokens import Authentication

    core = build_core(load_settings(server.env))
    profile = core.accounts.authenticate(USERNAME, PASSWORD)
    client = core.clients.get(server.bench["rp"][0])  # type: ignore[attr-defined]
    if profile is None or client is None:
        raise RuntimeError("set-up: the bench account or client is missing")
    auth = Authentication(account_id=profile.id, auth_time=int(time.time()), amr=("pwd",), acr="loa/1",
                          sid=secrets.token_urlsafe(16))

    def mint() -> str:
        return core.issuer.access_token(client, auth, "openid profile email")[0]

    return mint, core.close


# -- the peer ------------------------------------------------------------------------------------------
class Peer:
    """node-oidc-provider in one pinned process."""

    def __init__(self, cpus: str | None) -> None:
        self.cpus = cpus
        self.pgid = 0
        self.url = ""
        self.log: Path | None = None
        self.clients = {alg: (f"peer-cc-{alg.lower()}", secrets.token_urlsafe(32)) for alg in ("ES256", "RS256")}
        self.rp = ("peer-rp", secrets.token_urlsafe(32))

    @staticmethod
    def install() -> str:
        node = shutil.which("node")
        if node is None:
            raise RuntimeError("node is not installed: the peer (node-oidc-provider) needs Node.js >= 20")
        if not (PEER_DIR / "node_modules" / "oidc-provider").exists():
            out("   set-up: npm ci in bench/peer (node-oidc-provider, pinned by package-lock.json)")
            result = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=PEER_DIR,
                                    capture_output=True, text=True, timeout=300)
            if result.returncode != 0:
                raise RuntimeError(f"npm ci failed in bench/peer: {result.stderr.strip()[-800:]}")
        version = json.loads((PEER_DIR / "node_modules" / "oidc-provider" / "package.json").read_text())["version"]
        node_version = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
        return f"oidc-provider {version} on node {node_version}"

    def start(self) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        config = json.dumps({"es256": self.clients["ES256"], "rs256": self.clients["RS256"], "rp": self.rp,
                             "redirect_uri": REDIRECT_URI})
        command = ["node", "server.mjs", str(port), config]
        if self.cpus is not None and HAS_TASKSET:
            command = ["taskset", "-c", self.cpus] + command
        self.log = Path(tempfile.mkstemp(prefix="yihao-bench-peer-", suffix=".log")[1])
        with self.log.open("w") as handle:
            self._process = subprocess.Popen(command, cwd=PEER_DIR, stdout=handle, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL, start_new_session=True,
                                             env={**os.environ, "NODE_ENV": "production"})
        self.pgid = self._process.pid
        _groups.add(self.pgid)
        wait_until_up(self._process, self.url + "/.well-known/openid-configuration", self.log_tail, timeout=30)

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:] if self.log else ""

    def stop(self) -> None:
        if self.pgid:
            _kill_group(self.pgid, grace=5.0)
            self.pgid = 0
        if self.log:
            self.log.unlink(missing_ok=True)


# -- wiring a target's loads ---------------------------------------------------------------------
def build_loads(target: Target, refresh_pool: int, refresh_extra: dict[str, str]) -> str:
    """Fill target.loads from its discovery document; returns a line describing the refresh response."""
    metadata = httpx.get(target.url + "/.well-known/openid-configuration", timeout=10).json()
    grants = set(metadata.get("grant_types_supported", ["authorization_code", "implicit"]))
    loads = target.loads
    loads["discovery"] = Load(url=target.url + "/.well-known/openid-configuration")
    loads["jwks"] = Load(url=metadata["jwks_uri"])
    for alg in ("ES256", "RS256"):
        name = f"cc_{alg.lower()}"
        if "client_credentials" not in grants:
            loads[name] = Load(missing="endpoint missing (client_credentials not in grant_types_supported)")
        else:
            loads[name] = Load(url=metadata["token_endpoint"], method="POST", body="grant_type=client_credentials",
                               auth=basic(*target.cc[alg]), expect='"access_token"')
    access = target.mint_access_token() if target.mint_access_token else target.access_token
    loads["userinfo"] = Load(url=metadata["userinfo_endpoint"], auth=f"Bearer {access}", expect='"sub"')
    if "introspection_endpoint" not in metadata:
        loads["introspect"] = Load(missing="endpoint missing (no introspection_endpoint in discovery)")
    else:
        loads["introspect"] = Load(url=metadata["introspection_endpoint"], method="POST",
                                   body=urlencode({"token": access}), auth=basic(*target.rp),
                                   expect='"active":true')
    description = ""
    if "refresh_token" not in grants:
        loads["refresh"] = Load(missing="endpoint missing (refresh_token not in grant_types_supported)")
    else:
        tokens, sample = event_loop_run(refresh_tokens(target, metadata, refresh_pool, refresh_extra))
        description = describe_token_response(sample)
        if not tokens:
            loads["refresh"] = Load(missing=f"no refresh_token issued by the code flow ({description})")
        else:
            loads["refresh"] = Load(url=metadata["token_endpoint"], method="POST", auth=basic(*target.rp),
                                    tokens=tokens)
    for name, load in loads.items():  # one request each: a figure that fails here is skipped, not measured
        if load.missing or load.tokens is not None:
            continue
        headers = {"Authorization": load.auth} if load.auth else {}
        if load.method == "POST":
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        response = httpx.request(load.method, load.url, content=load.body, headers=headers, timeout=10)
        if response.status_code != 200:
            load.missing = f"HTTP {response.status_code}: {response.text[:120]}"
        elif name == "introspect" and response.json().get("active") is not True:
            load.missing = f"the access token introspects as inactive: {response.text[:120]}"
    return description


# -- measuring with wrk --------------------------------------------------------------------------------
@dataclass
class Measure:
    rate: float
    p50: float  # ms
    p99: float
    max: float
    errors: dict[str, int]
    server_cores: float
    loadgen_cores: float
    other_cores: float
    requests: int


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        out("   set-up: apt-get install -y wrk (the load generator)")
        for command in (["apt-get", "install", "-y", "-q", "wrk"], ["apt-get", "update", "-q"],
                        ["apt-get", "install", "-y", "-q", "wrk"]):
            subprocess.run(command, capture_output=True, timeout=600)
            if shutil.which("wrk"):
                return shutil.which("wrk")  # type: ignore[return-value]
    raise RuntimeError("wrk is not installed (Debian: apt-get install wrk)")


def wrk(load: Load, seconds: float, connections: int, loadgen_cpu: set[int] | None, pgid: int,
        database: str | None = None) -> Measure:
    env = {**os.environ, "BENCH_METHOD": load.method}
    if load.body is not None:
        env["BENCH_BODY"] = load.body
    if load.auth:
        env["BENCH_AUTH"] = load.auth
    if load.expect:
        env["BENCH_EXPECT"] = load.expect
    pool_file = None
    if load.tokens is not None:
        pool_file = Path(tempfile.mkstemp(prefix="yihao-bench-rt-")[1])
        pool_file.write_text("\n".join(load.tokens) + "\n")
        env["BENCH_TOKENS"] = env["BENCH_TOKENS_OUT"] = str(pool_file)
    command = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "2s", "-s", str(LUA),
               load.url]
    if loadgen_cpu is not None and HAS_TASKSET:
        command = ["taskset", "-c", ",".join(map(str, sorted(loadgen_cpu)))] + command
    before_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    a = cpu_snapshot(pgid, database)
    try:
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=seconds + 60)
    finally:
        b = cpu_snapshot(pgid, database)
        after_children = resource.getrusage(resource.RUSAGE_CHILDREN)
        if pool_file is not None:
            load.tokens = [t for t in pool_file.read_text().split("\n") if t]
            pool_file.unlink(missing_ok=True)
    line = next((x for x in result.stdout.splitlines() if x.startswith("BENCH ")), None)
    if result.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({result.returncode}): {result.stderr.strip()[-500:] or result.stdout[-500:]}")
    data = json.loads(line[6:])
    cpu = CpuUse.between(a, b)
    wall = max(1e-6, b.at - a.at)
    loadgen = ((after_children.ru_utime + after_children.ru_stime) - (before_children.ru_utime + before_children.ru_stime)) / wall
    errors = {k: data[k] for k in ("connect", "read", "write", "timeout", "status", "bad") if data[k]}
    return Measure(rate=data["requests"] / (data["duration_us"] / 1e6), p50=data["p50_us"] / 1000,
                   p99=data["p99_us"] / 1000, max=data["max_us"] / 1000, errors=errors, server_cores=cpu.server,
                   loadgen_cores=loadgen, other_cores=max(0.0, cpu.other - loadgen), requests=data["requests"])


def measure(target: Target, figure: str, seconds: float, connections: int, loadgen_cpu: set[int] | None,
            label: str) -> Measure | None:
    load = target.loads[figure]
    if load.missing:
        return None
    if figure in ("userinfo", "introspect") and target.mint_access_token:
        fresh = target.mint_access_token()  # access tokens live minutes; a full run lasts longer
        load.auth = f"Bearer {fresh}" if figure == "userinfo" else load.auth
        load.body = urlencode({"token": fresh}) if figure == "introspect" else load.body
    if load.tokens is not None and len(load.tokens) < connections:
        load.missing = f"refresh-token pool exhausted ({len(load.tokens)} left for {connections} connections)"
        return None
    m = wrk(load, seconds, connections, loadgen_cpu, target.pgid, target.database)
    if label:
        noisy = f"  [NOISY: other {m.other_cores:.2f} cores]" if m.other_cores > NOISE_CORES else ""
        errors = f"  ERRORS {m.errors}" if m.errors else ""
        out(f"   {label:<22}{m.rate:9.0f}/s  p50 {m.p50:6.1f} ms  p99 {m.p99:6.1f} ms  server {m.server_cores:.2f} "
            f"cores, wrk {m.loadgen_cores:.2f} cores{errors}{noisy}")
    return m


# -- the floor ------------------------------------------------------------------------------------------
def jws_floor(seconds: float, cpu: int) -> dict[str, dict[str, float]]:
    """Per second on one core: ES256/RS256 sign and verify, via idp.jose (jwcrypto) and raw cryptography."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding

    from idp import jose
    from idp.keys import generate_key

    def rate(fn: Callable[[], Any]) -> float:
        for _ in range(20):
            fn()
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            for _ in range(10):
                fn()
            count += 10
        return count / (time.perf_counter() - start)

    claims = {"iss": "http://127.0.0.1:8000", "sub": "x" * 43, "aud": "http://127.0.0.1:8000", "client_id": "c" * 22,
              "scope": "openid profile email", "jti": "j" * 22, "iat": 1, "exp": 2}
    found: dict[str, dict[str, float]] = {}
    previous = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        for alg in ("ES256", "RS256"):
            key = generate_key(alg)
            public = key.public()
            token = jose.sign(claims, key)
            private = key.get_op_key("sign")
            message = token.rsplit(".", 1)[0].encode()
            if alg == "ES256":
                raw_sign = lambda: private.sign(message, ec.ECDSA(hashes.SHA256()))  # noqa: E731
                signature = raw_sign()
                raw_verify = lambda: private.public_key().verify(signature, message, ec.ECDSA(hashes.SHA256()))  # noqa: E731
            else:
                raw_sign = lambda: private.sign(message, padding.PKCS1v15(), hashes.SHA256())  # noqa: E731
                signature = raw_sign()
                raw_verify = lambda: private.public_key().verify(signature, message, padding.PKCS1v15(), hashes.SHA256())  # noqa: E731
            found[f"{alg} sign"] = {"jose": rate(lambda: jose.sign(claims, key)), "raw": rate(raw_sign)}
            found[f"{alg} verify"] = {"jose": rate(lambda: jose.verify(token, lambda kid: public, (alg,))),
                                      "raw": rate(raw_verify)}
    finally:
        os.sched_setaffinity(0, previous)
    return found


# -- profiling --------------------------------------------------------------------------------------------
def py_spy() -> str | None:
    for candidate in (shutil.which("py-spy"), str(Path(PYTHON).parent / "py-spy")):
        if candidate and Path(candidate).exists():
            return candidate
    result = subprocess.run([PYTHON, "-m", "pip", "install", "--quiet", "py-spy"], capture_output=True, text=True)
    candidate = Path(PYTHON).parent / "py-spy"
    return str(candidate) if result.returncode == 0 and candidate.exists() else None


def busiest_pid(pgid: int) -> int:
    """The worker: the process of the group that used the most CPU."""
    snap = cpu_snapshot(pgid)
    return max(snap.server_procs, key=lambda pid: snap.server_procs[pid]) if snap.server_procs else pgid


def profile(target: Target, figure: str, seconds: float, connections: int, loadgen_cpu: set[int] | None,
            tool: str, keep: Path | None = None, top: int = 12) -> None:
    """Sample the worker with py-spy while wrk loads one figure; print the top own and inclusive frames."""
    load = target.loads[figure]
    if load.missing:
        out(f"   profile {figure}: n/a ({load.missing})")
        return
    raw = Path(tempfile.mkstemp(prefix="yihao-bench-prof-", suffix=".txt")[1])
    pid = busiest_pid(target.pgid)
    spy = subprocess.Popen([tool, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))), "--rate", "250",
                            "--format", "raw", "--nonblocking", "-o", str(raw)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    before = thread_cpu(pid)
    try:
        m = measure(target, figure, seconds + 1, connections, loadgen_cpu, label="")
    finally:
        _stderr = spy.communicate(timeout=60)[1]
    after = thread_cpu(pid)
    names = thread_names(tool, pid)  # after the load: the pool's threads are started on demand
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [_frame(f) for f in stack.split(";")]
        frames = [f for f in frames if f]
        if not frames:
            continue
        if frames[-1].startswith(IDLE_LEAVES):
            continue  # a pool thread waiting for work, or the event loop waiting for I/O
        n = int(count)
        total += n
        own[frames[-1]] += n
        for name in set(frames):
            inclusive[name] += n
    if keep is not None:  # the collapsed stacks, for a flame graph or a closer look
        keep.mkdir(parents=True, exist_ok=True)
        shutil.copy(raw, keep / f"{figure}.txt")
    raw.unlink(missing_ok=True)
    if not total:
        out(f"   profile {figure}: no samples ({_stderr.strip()[-200:]})")
        return
    out(f"   profile {figure}: {total} samples of the busy threads of pid {pid}")
    if m is not None and m.rate:
        # py-spy counts a thread waiting for the GIL as busy; the kernel's count is what each thread ran
        served = m.requests
        used: dict[str, float] = {}
        for tid, seconds in after.items():
            name = names.get(tid, "other")
            used[name] = used.get(name, 0.0) + seconds - before.get(tid, 0.0)
        spent = ", ".join(f"{name} {1e6 * cpu / served:.0f}" for name, cpu in
                          sorted(used.items(), key=lambda item: -item[1]) if 1e6 * cpu / served >= 1)
        out(f"      CPU per request, by thread (us, from /proc while profiled): {spent}")
    out("      own time (where the CPU is):")
    for name, n in own.most_common(top):
        out(f"        {n / total:6.1%}  {name}")
    out("      inclusive (what it is spent under):")
    for name, n in inclusive.most_common(top + 8):
        if n / total < 0.999:
            out(f"        {n / total:6.1%}  {name}")


def thread_names(tool: str, pid: int) -> dict[str, str]:
    """OS thread id -> Python thread name (numbered pool threads share one name), from `py-spy dump`."""
    dump = subprocess.run([tool, "dump", "--pid", str(pid), "--nonblocking"], capture_output=True, text=True,
                          timeout=60).stdout
    return {tid: re.sub(r"[_-]?\d+(?:\s*\(.*\))?$", "", name) or name
            for tid, name in re.findall(r'^Thread (\d+) \([^)]*\): "([^"]*)"', dump, re.MULTILINE)}


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds so far of each thread of `pid`, by OS thread id."""
    used: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            used[task.name] = _proc_cpu_seconds((task / "stat").read_text())[2]
        except (OSError, ValueError, IndexError):
            continue
    return used


def _frame(text: str) -> str:
    """'fn (path/to/mod.py:12)' -> 'fn (mod.py)' : aggregate by function, not by line."""
    match = re.match(r"(.*) \((.*?):\d+\)$", text.strip())
    if not match:
        return text.strip()
    fn, path = match.groups()
    if fn in ("<module>",):
        return ""
    parts = path.split("/")
    short = "/".join(parts[-2:]) if "site-packages" in path or "idp" in parts else parts[-1]
    return f"{fn} ({short})"


# -- orchestration ------------------------------------------------------------------------------------------
def start_yihao(config: Config, cpus: str | None) -> tuple[Server, Target, Callable[[], None]]:
    # ES256 access tokens, as the peer's ES256 resource server and ID tokens
    server = Server(config.backend, config.workers, cpus, prepare=prepare_yihao,
                    extra_env={"YIHAO_ACCESS_TOKEN_ALG": "ES256"})
    server.start()
    mint, close = yihao_minter(server)
    bench = server.bench  # type: ignore[attr-defined]
    target = Target("yihao", server.url, server.pgid, cc=bench["cc"], rp=bench["rp"], mint_access_token=mint,
                    database=server.database, workers=config.workers)
    return server, target, close


def start_peer_target(peer: Peer, refresh_pool: int) -> Target:
    target = Target("peer", peer.url, peer.pgid, cc=peer.clients, rp=peer.rp)
    metadata = httpx.get(peer.url + "/.well-known/openid-configuration", timeout=10).json()
    body = event_loop_run(_one_flow(target, metadata))
    target.access_token = body["access_token"]
    line = build_loads(target, refresh_pool, {})
    out(f"   peer set-up: code flow gives {line}")
    refresh = target.loads["refresh"]
    if refresh.tokens:
        target.mint_access_token = lambda: mint_by_refresh(target, refresh, metadata["token_endpoint"])
    return target


def mint_by_refresh(target: Target, refresh: Load, token_endpoint: str) -> str:
    """A fresh access token from one refresh grant (the peer's access tokens cannot be minted from outside)."""
    assert refresh.tokens
    response = httpx.post(token_endpoint, headers={"Authorization": basic(*target.rp)}, timeout=10,
                          data={"grant_type": "refresh_token", "refresh_token": refresh.tokens.pop()})
    if response.status_code != 200:
        raise RuntimeError(f"refresh grant at set-up: HTTP {response.status_code}: {response.text[:200]}")
    body = response.json()
    refresh.tokens.append(body["refresh_token"])
    return str(body["access_token"])


async def _one_flow(target: Target, metadata: dict[str, Any]) -> dict[str, Any]:
    async with httpx.AsyncClient(follow_redirects=False, timeout=30.0) as http:
        return await code_flow(http, metadata["authorization_endpoint"], metadata["token_endpoint"], target.rp, {})


def run_config(config: Config, peer_target: Target | None, figures: list[Figure], args: argparse.Namespace,
               ) -> dict[str, Any]:
    server_cpus, loadgen_cpus, where = placement(config.workers)
    out(f"\n== Yihao {config.label}, {config.workers} worker(s); {where}")
    busy = wait_for_quiet(QUIET_WAIT_SECONDS)
    if busy:
        out(f"   WARNING: {busy}; the figures below may be low")
    server, target, close = start_yihao(config, server_cpus)
    results: dict[str, dict[str, list[Measure]]] = {"yihao": {}, "peer": {}}
    tail: dict[str, Measure | None] = {}
    try:
        # each wrk run strands the tokens in flight when it stops: one pool's worth per run, warm-up and profile
        try:
            description = build_loads(target, args.connections * (args.runs + 3 + args.profile), {})
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}\nYihao's log:\n{server.log_tail()}") from None
        if description:
            out(f"   Yihao set-up: code flow gives {description}")
        targets = [target] + ([peer_target] if peer_target else [])
        for t in targets:
            for f in figures:
                if t.loads[f.name].missing:
                    out(f"   {t.name} {f.name}: n/a: {t.loads[f.name].missing}")
        for run in range(1, args.runs + 1):
            out(f"   -- run {run}")
            for f in figures:
                for t in targets:
                    if run == 1 and not t.loads[f.name].missing:  # warm-up: JITs, caches, connection pools
                        measure(t, f.name, args.warmup, args.connections, loadgen_cpus, label="")
                    m = measure(t, f.name, args.seconds, args.connections, loadgen_cpus, label=f"{t.name} {f.name}")
                    if m is not None:
                        results[t.name].setdefault(f.name, []).append(m)
        if config.workers == 1 and "cc_es256" in [f.name for f in figures]:
            out(f"   -- tail latency: cc_es256, 256 connections, {args.tail:.0f} s")
            for t in targets if peer_target and not args.peer_tail_done else [target]:
                tail[t.name] = measure(t, "cc_es256", args.tail, 256, loadgen_cpus, label=f"{t.name} cc_es256 x256")
            if peer_target:
                args.peer_tail_done = True
        if args.profile and config.workers == 1 and not args.profile_done:
            tool = py_spy()
            if tool is None:
                out("   profile: py-spy is not available (pip install py-spy)")
            else:
                out(f"\n== Profile: Yihao {config.label}, 1 worker, py-spy {args.profile_seconds:.0f} s per figure")
                for f in figures:
                    profile(target, f.name, args.profile_seconds, args.connections, loadgen_cpus, tool,
                            args.profile_raw)
            args.profile_done = True
    finally:
        close()
        server.stop()
    return {"config": config, "results": results, "tail": tail}


def verdict_tail(m: Measure | None) -> str:
    if m is None:
        return "n/a"
    ok = not m.errors.get("timeout") and m.p99 <= 4 * m.p50
    return (f"p50 {m.p50:.1f} ms, p99 {m.p99:.1f} ms ({m.p99 / m.p50:.1f} x p50), max {m.max:.0f} ms, "
            f"timeouts {m.errors.get('timeout', 0)}, errors {sum(v for k, v in m.errors.items() if k != 'timeout')}: "
            f"{'PASS' if ok else 'FAIL'}")


def print_tables(done: list[dict[str, Any]], peer_medians: dict[str, list[float]], figures: list[Figure],
                 floor: dict[str, dict[str, float]]) -> None:
    peer_from = next((f"{e['config'].label} 1-worker" for e in reversed(done) if e["results"]["peer"]), "none")
    out("\n== Summary (medians of the runs; ratio = Yihao / peer; floor = the bounding JWS operation on one core, "
        "jwcrypto via idp.jose / raw cryptography)")
    for entry in done:
        c: Config = entry["config"]
        ours, theirs = entry["results"]["yihao"], entry["results"]["peer"]
        note = "" if theirs else f"  (peer column: the peer's medians from the {peer_from} table)"
        out(f"\n{c.label}, {c.workers} worker(s){note}")
        header = f"{'figure':<12}{'Yihao/s':>9}  {'runs':<20}{'peer/s':>9}  {'ratio':>6}  {'target':<14}{'floor/s (jose / raw)':>26}"
        out(header)
        out("-" * len(header))
        for f in figures:
            mine = [m.rate for m in ours.get(f.name, [])]
            peer = [m.rate for m in theirs.get(f.name, [])] or peer_medians.get(f.name, [])
            y = statistics.median(mine) if mine else None
            p = statistics.median(peer) if peer else None
            runs = ", ".join(f"{x:.0f}" for x in mine) if mine else "n/a"
            ratio = f"{y / p:6.2f}" if y and p else "   n/a"
            if c.workers == 1 and y and p:
                target = f">={f.target:.1f} {'PASS' if y / p >= f.target else 'FAIL'}"
            else:
                target = f">={f.target:.1f} (1 worker)" if c.workers == 1 else "—"
            fl = floor.get(f.floor or "", {})
            floor_text = f"{f.floor} {fl['jose']:.0f} / {fl['raw']:.0f}" if fl else "—"
            out(f"{f.name:<12}{(f'{y:.0f}' if y else 'n/a'):>9}  {runs:<20}{(f'{p:.0f}' if p else 'n/a'):>9}  {ratio}  "
                f"{target:<14}{floor_text:>26}")
        for who, m in entry["tail"].items():
            out(f"tail {who}: cc_es256, 256 connections: {verdict_tail(m)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="measured window per run and figure (default 5)")
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (default 3; the median is reported)")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up before the first run of each figure")
    parser.add_argument("--connections", type=int, default=64, help="keep-alive connections (default 64)")
    parser.add_argument("--tail", type=float, default=30.0, help="seconds of the 256-connection tail run (default 30)")
    parser.add_argument("--only", choices=("sqlite", "postgres"), help="one backend only")
    parser.add_argument("--workers", choices=("1", "2", "both"), default="both", help="Yihao workers (postgres)")
    parser.add_argument("--figures", default=",".join(f.name for f in FIGURES), help="comma-separated figures")
    parser.add_argument("--profile", action="store_true", help="py-spy the 1-worker server under each figure")
    parser.add_argument("--profile-seconds", type=float, default=6.0)
    parser.add_argument("--profile-raw", type=Path, metavar="DIR",
                        help="also keep each figure's collapsed py-spy stacks in DIR/FIGURE.txt")
    parser.add_argument("--quick", action="store_true", help="1 run x 2 s, tail 5 s (a smoke check, ~2 minutes)")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.seconds, args.tail, args.warmup = 1, 2.0, 5.0, 1.0
    args.runs = max(1, min(args.runs, 20))
    args.seconds = max(1.0, min(args.seconds, 600.0))
    args.peer_tail_done = args.profile_done = False
    figures = [BY_NAME[name] for name in args.figures.split(",") if name in BY_NAME]
    if not figures:
        parser.error(f"--figures: choose from {', '.join(BY_NAME)}")
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)

    out(f"tokens benchmark — {dt.datetime.now().astimezone().isoformat(timespec='seconds')}")
    out(f"host: {platform.node()}  python {platform.python_version()}  CPUs available: {CPUS}  "
        f"taskset: {'yes' if HAS_TASKSET else 'no'}  git: {git_head()}")
    ensure_wrk()
    peer_version = Peer.install()
    out(f"peer: {peer_version}, one process, in-memory adapter (bench/peer/server.mjs)")
    out(f"load: wrk, 1 thread, {args.connections} keep-alive connections, {args.runs} x {args.seconds:.0f} s per figure "
        f"(+{args.warmup:.0f} s warm-up before run 1); Yihao and the peer alternate figure by figure")

    floor_cpu = CPUS[0]
    floor = jws_floor(0.5 if args.quick else 1.0, floor_cpu)
    out(f"floor on CPU {floor_cpu} (per second, jwcrypto via idp.jose / raw cryptography): " + "; ".join(
        f"{op} {v['jose']:.0f} / {v['raw']:.0f}" for op, v in floor.items()))

    configs = []
    if args.only in (None, "sqlite"):
        configs.append(Config("sqlite", 1))
    if args.only in (None, "postgres"):
        configs += [Config("postgres", w) for w in (1, 2) if args.workers in (str(w), "both")]

    peer_cpus = str(CPUS[0]) if len(CPUS) >= 2 and HAS_TASKSET else None
    peer = Peer(peer_cpus)
    done: list[dict[str, Any]] = []
    peer_medians: dict[str, list[float]] = {}
    try:
        peer.start()
        out(f"peer listening at {peer.url}" + (f", pinned to CPU {peer_cpus}" if peer_cpus else ""))
        peer_pool = args.connections * (args.runs + 3) * sum(1 for c in configs if c.workers == 1)
        peer_target = start_peer_target(peer, peer_pool)
        measured_peer = False
        for config in configs:
            with_peer = config.workers == 1 and not (args.quick and measured_peer)
            entry = run_config(config, peer_target if with_peer else None, figures, args)
            done.append(entry)
            if entry["results"]["peer"]:
                measured_peer = True
                peer_medians = {k: [statistics.median(m.rate for m in v)] for k, v in entry["results"]["peer"].items()}
    finally:
        peer.stop()
        _kill_all_groups()
    print_tables(done, peer_medians, figures, floor)

    write_results("tokens", args.quick)
    return 0


if __name__ == "__main__":
    run_main(main)
