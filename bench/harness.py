"""What every benchmark here shares: real `yihao serve` processes, CPU accounting, pinning, output.

The benchmarks start real server processes in their own process groups and kill them on the way out
(also on Ctrl-C and SIGTERM); each server gets a fresh database, Redis prefix and var directory.
"""
from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the benchmarks import idp for set-up and floors
PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_URL = "postgresql://postgres@127.0.0.1:5432/{db}"
REDIS_URL = "redis://127.0.0.1:6379/0"
REDIRECT_URI = "http://127.0.0.1:9/cb"
USERNAME = "bench-user"
PASSWORD = "bench correct horse battery staple"
QUIET_WAIT_SECONDS = 60.0  # before each run, wait at most this long for the machine to be idle
NOISE_CORES = 0.15  # "other" CPU above this during a run marks it as noisy
HAS_TASKSET = shutil.which("taskset") is not None
CPUS = sorted(os.sched_getaffinity(0))

# -- output: printed and kept ------------------------------------------------------------------
_lines: list[str] = []


def out(text: str = "") -> None:
    print(text, flush=True)
    _lines.append(text)


# -- process bookkeeping: every server is a process group we kill on the way out ---------------
_groups: set[int] = set()


def _group_alive(pgid: int) -> bool:
    """True while any process of the group is still running (zombies, already dead, do not count)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        rest = stat[stat.rindex(")") + 2:].split()
        if int(rest[2]) == pgid and rest[0] not in ("Z", "X"):
            return True
    return False


def _kill_group(pgid: int, grace: float = 15.0) -> None:
    """SIGTERM the server's process group, SIGKILL what is left after `grace` seconds, reap the leader."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pgid, os.WNOHANG)  # the leader is our child: reap it so it does not linger as a zombie
        if not _group_alive(pgid):
            break
        time.sleep(0.1)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
    _groups.discard(pgid)


def _kill_all_groups() -> None:
    for pgid in list(_groups):
        _kill_group(pgid, grace=5.0)


def _on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds through every finally: servers, databases, Redis keys


# -- small helpers -------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@contextlib.contextmanager
def pinned(cpus: set[int] | None) -> Iterator[None]:
    """Run the block with this process pinned to `cpus` (None: leave as is), then restore."""
    if cpus is None:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


_TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class CpuSnapshot:
    """CPU seconds so far: per CPU (busy), the server's process group, our PostgreSQL backends, Redis."""

    at: float
    per_cpu: dict[int, float]
    server: float
    postgres: float
    redis: float
    loadgen: float
    server_procs: dict[int, float] = field(default_factory=dict)


def _proc_cpu_seconds(stat: str) -> tuple[int, str, float]:
    """(pgrp, comm, utime + stime seconds) from a /proc/PID/stat line."""
    comm = stat[stat.index("(") + 1:stat.rindex(")")]
    rest = stat[stat.rindex(")") + 2:].split()
    # after "pid (comm) ": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
    return int(rest[2]), comm, (int(rest[11]) + int(rest[12])) / _TICK


def per_cpu_busy() -> dict[int, float]:
    busy: dict[int, float] = {}
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("cpu") and line[3:4].isdigit():
            name, *values = line.split()
            v = [int(x) for x in values]
            # user nice system idle iowait irq softirq steal
            busy[int(name[3:])] = (v[0] + v[1] + v[2] + v[5] + v[6] + (v[7] if len(v) > 7 else 0)) / _TICK
    return busy


def cpu_snapshot(server_pgid: int = 0, database: str | None = None) -> CpuSnapshot:
    server = postgres = redis_ = 0.0
    procs: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            pgrp, comm, seconds = _proc_cpu_seconds(Path(f"/proc/{entry}/stat").read_text())
            if server_pgid and pgrp == server_pgid:
                server += seconds
                procs[int(entry)] = seconds
            elif comm.startswith("redis-server"):
                redis_ += seconds
            elif comm == "postgres" and database and database in Path(f"/proc/{entry}/cmdline").read_text(errors="replace"):
                postgres += seconds
        except (OSError, ValueError, IndexError):
            continue
    return CpuSnapshot(time.monotonic(), per_cpu_busy(), server, postgres, redis_, time.process_time(), procs)


@dataclass
class CpuUse:
    """Cores used over a window, by whom."""

    server: float
    loadgen: float
    postgres: float
    redis: float
    other: float  # everything else on the machine: kernel threads, other people's processes
    per_cpu: dict[int, float]
    server_procs: list[float]  # per server process (supervisor and workers), busiest first

    @classmethod
    def between(cls, a: CpuSnapshot, b: CpuSnapshot) -> CpuUse:
        wall = max(1e-6, b.at - a.at)
        per_cpu = {c: (b.per_cpu[c] - a.per_cpu.get(c, 0.0)) / wall for c in b.per_cpu}
        server, loadgen = (b.server - a.server) / wall, (b.loadgen - a.loadgen) / wall
        postgres, redis_ = (b.postgres - a.postgres) / wall, (b.redis - a.redis) / wall
        total = sum(per_cpu.values())
        procs = sorted(((b.server_procs[pid] - a.server_procs.get(pid, 0.0)) / wall for pid in b.server_procs),
                       reverse=True)
        return cls(server, loadgen, postgres, redis_, max(0.0, total - server - loadgen - postgres - redis_), per_cpu,
                   procs)

    def describe(self, workers_count: int = 1) -> str:
        cpus = " ".join(f"CPU{c} {min(v, 1.0):.0%}" for c, v in sorted(self.per_cpu.items()) if c in CPUS)
        # the busiest processes of the group are the workers (the supervisor and resource tracker idle)
        workers = self.server_procs[:workers_count] if workers_count > 1 else []
        split = f" ({' + '.join(f'{v:.2f}' for v in workers)} per worker process)" if workers else ""
        return (f"CPU (cores): server {self.server:.2f}{split}, load generator {self.loadgen:.2f}, postgres {self.postgres:.2f}, "
                f"redis {self.redis:.2f}, other {self.other:.2f}; busy {cpus}")


def wait_for_quiet(max_wait: float, threshold: float = 0.2) -> str | None:
    """Wait (bounded) until the machine is idle; None if it is, else a warning naming the busiest processes."""
    deadline = time.monotonic() + max_wait
    busy = 0.0
    while True:
        a = per_cpu_busy()
        procs_a = _all_proc_cpu()
        time.sleep(1.0)
        b = per_cpu_busy()
        busy = sum(b[c] - a.get(c, 0.0) for c in b)
        if busy < threshold:
            return None
        if time.monotonic() >= deadline:
            procs_b = _all_proc_cpu()
            top = sorted(((procs_b[p][1] - procs_a[p][1], procs_b[p][0]) for p in procs_b if p in procs_a),
                         reverse=True)[:3]
            names = ", ".join(f"{name} {used:.2f}" for used, name in top if used > 0.02)
            return f"the machine was not idle before this run: {busy:.2f} cores busy ({names})"


def _all_proc_cpu() -> dict[str, tuple[str, float]]:
    found: dict[str, tuple[str, float]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                _pgrp, comm, seconds = _proc_cpu_seconds(Path(f"/proc/{entry}/stat").read_text())
                found[entry] = (comm, seconds)
            except (OSError, ValueError, IndexError):
                continue
    return found


# -- one server: fresh database, account, client, process ----------------------------------------
@dataclass
class Server:
    backend: str  # sqlite | postgres
    workers: int
    cpus: str | None  # taskset list, or None
    url: str = ""
    client_id: str = ""
    client_secret: str = ""
    pgid: int = 0
    env: dict[str, str] = field(default_factory=dict)
    tmp: Path | None = None
    database: str | None = None
    prefix: str | None = None
    log: Path | None = None
    extra_env: dict[str, str] = field(default_factory=dict)  # more YIHAO_* settings for this server
    prepare: Callable[[Server], None] | None = None  # runs after the CLI set-up, before the server starts

    def start(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="yihao-bench-"))
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("YIHAO_")}
        env.update({
            "YIHAO_BIND": f"127.0.0.1:{port}", "YIHAO_ISSUER": self.url, "YIHAO_VAR_DIR": str(self.tmp / "var"),
            "YIHAO_MASTER_KEY": b64u(os.urandom(32)), "YIHAO_LOG_LEVEL": "WARNING",
            "YIHAO_WORKERS": str(self.workers), "PYTHONUNBUFFERED": "1",
        })
        if self.backend == "postgres":
            import psycopg

            self.database = f"yihao_bench_{secrets.token_hex(6)}"
            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{self.database}"')
            self.prefix = f"yihao-bench:{secrets.token_hex(6)}:"
            env.update({"YIHAO_DATABASE_URL": PG_URL.format(db=self.database), "YIHAO_REDIS_URL": REDIS_URL,
                        "YIHAO_REDIS_PREFIX": self.prefix})
        else:
            if self.workers != 1:
                raise ValueError("the in-process store supports one worker only")
            env["YIHAO_DATABASE_URL"] = f"sqlite:///{self.tmp / 'var' / 'yihao.db'}"
        env.update(self.extra_env)
        self.env = env
        self._cli(["db", "upgrade"])
        self._cli(["accounts", "create", USERNAME, "--password-stdin"], stdin=PASSWORD + "\n")
        created = json.loads(self._cli(["clients", "create", "--name", "bench", "--redirect-uri", REDIRECT_URI,
                                        "--first-party", "--json"]).strip().splitlines()[-1])
        self.client_id, self.client_secret = created["client_id"], created["client_secret"]
        if self.prepare is not None:
            self.prepare(self)
        command = [PYTHON, "-m", "idp", "serve"]
        if self.cpus is not None and HAS_TASKSET:
            command = ["taskset", "-c", self.cpus] + command
        self.log = self.tmp / "server.log"
        with self.log.open("w") as handle:
            process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, start_new_session=True)
        self.pgid = process.pid
        _groups.add(self.pgid)
        self._process = process
        self._wait_healthy(process)

    def _cli(self, args: list[str], stdin: str | None = None) -> str:
        result = subprocess.run([PYTHON, "-m", "idp", *args], env=self.env, cwd=ROOT, input=stdin, text=True,
                                capture_output=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"`yihao {' '.join(args)}` failed ({result.returncode}): {result.stderr.strip()[-800:]}")
        return result.stdout

    def _wait_healthy(self, process: subprocess.Popen) -> None:
        wait_until_up(process, self.url + "/healthz", self.log_tail)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:]) if self.log else ""
        except OSError:
            return ""

    def stop(self) -> None:
        if self.pgid:
            _kill_group(self.pgid)
            with contextlib.suppress(Exception):
                self._process.wait(timeout=5)
            self.pgid = 0
        if self.database:
            with contextlib.suppress(Exception):
                import psycopg

                with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
            self.database = None
        if self.prefix:
            with contextlib.suppress(Exception):
                redis_unlink_prefix(self.prefix)
            self.prefix = None
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None


def event_loop_run(coro: Any) -> Any:
    try:
        import uvloop  # lighter load generator when available (installed with uvicorn[standard])

        return uvloop.run(coro)
    except ImportError:
        return asyncio.run(coro)


# -- Redis memory per SSO session -------------------------------------------------------------------
def redis_client() -> Any:
    import redis

    return redis.Redis.from_url(REDIS_URL, socket_timeout=10)


def redis_unlink_prefix(prefix: str) -> int:
    client = redis_client()
    removed = 0
    try:
        batch: list[bytes] = []
        for key in client.scan_iter(match=prefix.replace("*", r"\*") + "*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                removed += client.unlink(*batch)
                batch.clear()
        if batch:
            removed += client.unlink(*batch)
    finally:
        client.close()
    return removed


# -- orchestration -----------------------------------------------------------------------------------
@dataclass
class Config:
    backend: str
    workers: int

    @property
    def label(self) -> str:
        return "sqlite+memory" if self.backend == "sqlite" else "postgres+redis"


def placement(workers: int) -> tuple[str | None, set[int] | None, str]:
    """(taskset list for the server, affinity for the load generator, a description)."""
    if len(CPUS) < 2:
        return None, None, "fewer than 2 CPUs available: nothing pinned"
    if not HAS_TASKSET:
        return None, None, "taskset not found: nothing pinned"
    if workers == 1:
        return str(CPUS[0]), {CPUS[1]}, f"server on CPU {CPUS[0]}, load generator on CPU {CPUS[1]}"
    listed = ",".join(str(c) for c in CPUS[:2])
    return listed, None, (f"server on CPUs {listed}, load generator unpinned: it SHARES the two cores with the "
                          f"server (its CPU use is printed)")


def git_head() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return head + ("+dirty" if dirty else "") if head else "?"
    except (OSError, subprocess.SubprocessError):
        return "?"


def wait_until_up(process: subprocess.Popen, url: str, log_tail: Callable[[], str], timeout: float = 90.0) -> None:
    """Poll `url` until it answers 200; a clear error with the log's tail if the process dies or never answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{log_tail()}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer:\n{log_tail()}")


def write_results(name: str, quick: bool) -> None:
    """Keep what was printed: bench/results/NAME.txt, or NAME.quick.txt for a smoke run."""
    results_dir = ROOT / "bench" / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / (f"{name}.quick.txt" if quick else f"{name}.txt")
    path.write_text("\n".join(_lines) + "\n", encoding="utf-8")
    print(f"\n(written to {path.relative_to(ROOT)})")


def run_main(main: Callable[[], int]) -> None:
    """Run a benchmark's main(): servers, databases and Redis keys are cleaned up however it ends."""
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted: servers stopped, databases dropped, Redis keys removed", file=sys.stderr)
        sys.exit(130)
    except SystemExit as exc:
        if exc.code not in (0, None):
            print(f"\nstopped (exit {exc.code}): servers stopped, databases dropped, Redis keys removed", file=sys.stderr)
        raise
    finally:
        _kill_all_groups()
