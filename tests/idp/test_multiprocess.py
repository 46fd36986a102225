"""The production shape without Docker: two `yihao serve` processes sharing PostgreSQL and Redis."""
from __future__ import annotations

import json
import os
import signal
import socket
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.conftest import Backend, make_settings
from tests.live import ProcessServer, free_port, yihao
from tests.rp import Browser, RelyingParty, callback_params

pytestmark = pytest.mark.multiprocess


def _env(backend: Backend, tmp_path: Path) -> dict[str, str]:
    settings = make_settings(backend, tmp_path)
    return {"YIHAO_DATABASE_URL": settings.database_url, "YIHAO_REDIS_URL": backend.redis_url or "",
            "YIHAO_MASTER_KEY": settings.master_key, "YIHAO_VAR_DIR": str(tmp_path),
            "YIHAO_REDIS_PREFIX": f"yihao-test:{uuid.uuid4().hex}:", "YIHAO_LOG_LEVEL": "WARNING",
            "YIHAO_ARGON2_MEMORY_KIB": "8192"}


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)  # two workers need the shared store
def test_login_through_one_worker_and_redeem_through_another(backend: Backend, tmp_path: Path) -> None:
    env = _env(backend, tmp_path)
    issuer = f"http://127.0.0.1:{free_port()}"  # the load balancer's address, as both workers know it
    assert yihao(env, "db", "upgrade").returncode == 0
    created = yihao(env, "accounts", "create", "two-worker-citizen", "--password-stdin", stdin="s3cret-pass-word\n")
    assert created.returncode == 0, created.stderr
    out = yihao(env | {"YIHAO_ISSUER": issuer}, "clients", "create", "--name", "Two workers",
                "--redirect-uri", "https://rp.example.gov.cn/cb", "--first-party", "--json")
    client = json.loads(out.stdout)
    with ProcessServer(env, free_port(), tmp_path / "a.log", issuer) as first, \
            ProcessServer(env, free_port(), tmp_path / "b.log", issuer) as second:
        rp = RelyingParty(first.url, client["client_id"], client["client_secret"], "https://rp.example.gov.cn/cb")
        rp.issuer = issuer
        rp.metadata["authorization_endpoint"] = first.url + "/authorize"
        auth = rp.authorization()
        browser = Browser()
        response = browser.login(auth.url, "two-worker-citizen", "s3cret-pass-word", stop_at=rp.redirect_uri)
        params = callback_params(response)
        assert params["iss"] == issuer
        rp.metadata |= {"token_endpoint": second.url + "/token", "userinfo_endpoint": second.url + "/userinfo",
                        "jwks_uri": second.url + "/jwks"}
        body = rp.fetch_token(params["code"], auth.verifier)
        claims = rp.validate_id_token(body["id_token"], auth.nonce, body["access_token"])
        info = rp.userinfo(body["access_token"])
        assert info.status_code == 200 and info.json()["sub"] == claims["sub"]
        # The session made through the first worker is honoured by the second: SSO without a prompt.
        again = rp.authorization(prompt="none")
        sso = browser.get(again.url.replace(first.url, second.url))
        assert "code" in callback_params(sso)
        browser.close()


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _listening_inodes(pid: int, port: int) -> set[str]:
    """Inodes of the TCP sockets listening on `port` that process `pid` holds."""
    listening = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":  # 0A: LISTEN
                listening.add(fields[9])
    held = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in listening:
            held.add(target[8:-1])
    return held


def _get(url: str) -> int:
    return httpx.get(url + "/healthz", timeout=60, headers={"Connection": "close"}).status_code


@pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT") or not Path("/proc/net/tcp").exists(),
                    reason="SO_REUSEPORT and /proc are Linux's")
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_each_worker_accepts_on_a_socket_of_its_own_and_a_restarted_worker_leaves_none_unserved(
        backend: Backend, tmp_path: Path) -> None:
    env = _env(backend, tmp_path) | {"YIHAO_WORKERS": "2"}
    assert yihao(env, "db", "upgrade").returncode == 0
    port = free_port()
    with ProcessServer(env, port, tmp_path / "serve.log") as server:
        assert server.process is not None
        deadline = time.monotonic() + 60
        while True:  # both workers up: each holds one listening socket, not the same one
            held = {pid: _listening_inodes(pid, port) for pid in _children(server.process.pid)}
            workers = {pid: inodes for pid, inodes in held.items() if inodes}
            if len(workers) == 2 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert sorted(len(inodes) for inodes in workers.values()) == [1, 1]
        first, second = workers.values()
        assert first != second
        # A worker that dies is replaced; connections the kernel sends to its socket are still answered.
        os.kill(next(iter(workers)), signal.SIGKILL)
        assert all(_get(server.url) == 200 for _ in range(24))
