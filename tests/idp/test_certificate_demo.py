"""The demo (`yihao serve --demo`): an enterprise signs in through the reference agent with its SM2
certificate from one CA, then its RSA certificate from another, and lands in the same account."""
from __future__ import annotations

import html
import json
import re
import time
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urljoin

import httpx
import pytest

from idp.demo import ENTERPRISE_NAME
from tests.live import ProcessServer, free_port
from tests.rp import Browser, parse_form


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    var = tmp_path_factory.mktemp("demo")
    agent = f"http://127.0.0.1:{free_port()}"
    env = {"YIHAO_DEMO": "true", "YIHAO_VAR_DIR": str(var), "YIHAO_DATABASE_URL": f"sqlite:///{var}/yihao.db",
           "YIHAO_LOG_LEVEL": "WARNING", "YIHAO_REDIS_URL": "", "YIHAO_MASTER_KEY": "", "YIHAO_CERT_AGENT_URL": agent}
    with ProcessServer(env, free_port(), Path(var) / "serve.log") as server:
        for _ in range(100):  # the agent starts beside the server
            try:
                if httpx.get(agent + "/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield server.url, agent


def sign_in_with(demo: str, agent: str, algorithm: str) -> dict[str, Any]:
    browser = Browser()
    login = browser.follow(browser.get(demo + "/demo/login"), demo + "/demo/callback")
    page = browser.get(urljoin(str(login.url), parse_form(login.text)["action"].rsplit("/", 1)[0] + "/certificate"))
    listed = httpx.get(agent + "/v1/certificates", headers={"Origin": demo}).json()["certificates"]
    chosen = next(c for c in listed if c["algorithm"] == algorithm)
    signed = httpx.post(agent + "/v1/sign", headers={"Origin": demo},
                        json={"id": chosen["id"], "data": parse_form(page.text)["challenge"], "pin": "123456"}).json()
    form = parse_form(page.text)
    consent = browser.http.post(urljoin(str(page.url), form["action"]), data={
        "csrf_token": form["csrf_token"], "challenge": form["challenge"], "certificate": signed["certificate"],
        "signature": signed["signature"], "chain": ""})
    consent = browser.follow(consent, demo + "/demo/callback")
    done = consent if consent.is_redirect else browser.consent(consent, "approve", demo + "/demo/callback")
    shown = browser.get(urljoin(demo, done.headers["location"]))
    claims = re.search(r'<pre id="id-token-claims">(.*?)</pre>', shown.text, re.S)
    userinfo = re.search(r'<pre id="userinfo">(.*?)</pre>', shown.text, re.S)
    assert claims is not None and userinfo is not None, shown.text[:2000]
    return json.loads(html.unescape(claims.group(1))) | {"userinfo": json.loads(html.unescape(userinfo.group(1)))}


def test_the_demo_enterprise_reaches_one_account_with_certificates_from_two_cas(demo: tuple[str, str]) -> None:
    url, agent = demo
    sm2 = sign_in_with(url, agent, "sm2")
    rsa = sign_in_with(url, agent, "rsa")
    assert sm2["sub"] == rsa["sub"]
    assert (sm2["acr"], sm2["amr"]) == ("loa/4", ["hwk", "pin"]) and rsa["acr"] == "loa/4"
    assert sm2["userinfo"]["name"] == ENTERPRISE_NAME


def test_the_demo_agent_ends_when_the_demo_is_killed(tmp_path: Path) -> None:
    """A `yihao serve --demo` killed outright runs no clean-up: its agent must not live on holding
    the agent port, or the next demo could not start its own."""
    agent = f"http://127.0.0.1:{free_port()}"
    env = {"YIHAO_DEMO": "true", "YIHAO_VAR_DIR": str(tmp_path), "YIHAO_DATABASE_URL": f"sqlite:///{tmp_path}/yihao.db",
           "YIHAO_LOG_LEVEL": "WARNING", "YIHAO_REDIS_URL": "", "YIHAO_MASTER_KEY": "", "YIHAO_CERT_AGENT_URL": agent}
    with ProcessServer(env, free_port(), tmp_path / "serve.log") as server:
        assert _answers(agent, within=10.0), "the demo's agent did not start"
        assert server.process is not None
        server.process.kill()  # SIGKILL: no finally block runs
        server.process.wait(timeout=10)
        gone = time.monotonic() + 10.0
        while _answers(agent, within=0.0) and time.monotonic() < gone:
            time.sleep(0.2)
        assert not _answers(agent, within=0.0), "the agent outlived the demo"


def _answers(url: str, *, within: float) -> bool:
    deadline = time.monotonic() + within
    while True:
        try:
            return httpx.get(url + "/healthz", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)
