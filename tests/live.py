"""A real HTTP server for tests: uvicorn in a thread (one worker) or `yihao serve` in a process."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import uvicorn
from starlette.applications import Starlette

from idp.cli.http import Protocol


def yihao(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the `yihao` command line with `env` added to this environment."""
    return subprocess.run([sys.executable, "-m", "idp", *args], env={**os.environ, **env}, input=stdin,
                          capture_output=True, text=True, timeout=120)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(url: str, timeout: float = 30.0, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"server at {url} did not start")


class ThreadServer:
    """uvicorn serving `app` on a free loopback port, in a daemon thread."""

    def __init__(self, app: Starlette, port: int, lifespan: str = "off") -> None:
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False,
                                lifespan=lifespan, http=Protocol)  # the protocol `yihao serve` uses
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> ThreadServer:
        self._thread.start()
        wait_until_up(self.url)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


class ProcessServer:
    """`yihao serve` in its own process, configured only through the environment."""

    def __init__(self, env: dict[str, str], port: int, log: Path, issuer: str | None = None) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self._env = {**os.environ, **env, "YIHAO_BIND": f"127.0.0.1:{port}", "YIHAO_ISSUER": issuer or self.url}
        self._log = log
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> ProcessServer:
        handle = self._log.open("w")
        self.process = subprocess.Popen([sys.executable, "-m", "idp", "serve"], env=self._env, stdout=handle,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        wait_until_up(self.url, process=self.process)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.process is not None
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
