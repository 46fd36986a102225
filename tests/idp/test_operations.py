"""Operations: health, readiness, Prometheus metrics, and JSON logs that hold no secrets."""
from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
from sqlalchemy import text

from tests.idp.conftest import Person, Provider, RpFactory
from tests.live import ProcessServer, free_port, yihao
from tests.rp import Browser, RelyingParty, callback_params


def test_healthz_and_readyz_report_database_and_store(provider: Provider) -> None:
    assert httpx.get(provider.url + "/healthz").json() == {"status": "ok"}
    assert httpx.get(provider.url + "/readyz").json() == {"status": "ready", "database": True, "store": True}


def test_metrics_count_requests_by_route_template_logins_and_tokens(provider: Provider, make_rp: RpFactory,
                                                                   person: Person, browser: Browser) -> None:
    rp = make_rp(first_party=True)
    auth = rp.authorization()
    params = callback_params(browser.login(auth.url, person.username, person.password, stop_at=rp.redirect_uri))
    rp.fetch_token(params["code"], auth.verifier)
    text = httpx.get(provider.url + "/metrics").text
    assert re.search(r'yihao_http_requests_total\{method="POST",route="/interaction/\{uid\}/login",status="303"\} \d', text)
    assert re.search(r'yihao_logins_total\{outcome="success"\} [1-9]', text)
    assert re.search(r'yihao_tokens_issued_total\{grant_type="authorization_code"\} [1-9]', text)
    assert "yihao_http_request_duration_seconds_bucket" in text
    # the machine endpoints the edge calls directly are counted by their route as any other
    assert re.search(r'yihao_http_requests_total\{method="POST",route="/token",status="200"\} [1-9]', text)
    assert re.search(r'yihao_http_request_duration_seconds_count\{method="POST",route="/token"\} [1-9]', text)


def _rename(provider: Provider, table: str, to: str) -> None:
    """Take a table away from under the provider (or give it back); never waits long for its lock."""
    with provider.core.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SET LOCAL lock_timeout = '10s'"))
        connection.execute(text(f"ALTER TABLE {table} RENAME TO {to}"))


def test_a_fault_in_a_token_request_is_a_500_oauth_error_with_the_usual_headers(provider: Provider,
                                                                                make_rp: RpFactory) -> None:
    rp = make_rp(first_party=True, grant_types=["authorization_code", "refresh_token"])
    _rename(provider, "refresh_token", "refresh_token_away")  # the database loses the table under the provider
    try:
        response = httpx.post(provider.url + "/token", data={"grant_type": "refresh_token", "refresh_token": "x" * 43},
                              auth=(rp.client_id, rp.client_secret))
    finally:
        _rename(provider, "refresh_token_away", "refresh_token")
    assert response.status_code == 500
    assert response.json() == {"error": "server_error", "error_description": "an unexpected error occurred; it has been logged"}
    assert response.headers["x-request-id"] and response.headers["x-frame-options"] == "DENY"
    assert "Traceback" not in response.text and "refresh_token_away" not in response.text


def test_a_fault_on_a_persons_page_is_a_readable_500_page_with_the_usual_headers(provider: Provider) -> None:
    _rename(provider, "client", "client_away")
    try:
        response = httpx.get(provider.url + "/authorize", params={"client_id": "never-seen-" + "x" * 10,
                                                                   "response_type": "code", "ui_locales": "en"})
    finally:
        _rename(provider, "client_away", "client")
    assert response.status_code == 500 and response.headers["content-type"].startswith("text/html")
    assert "server_error" in response.text and "Traceback" not in response.text
    assert response.headers["x-request-id"] and response.headers["x-frame-options"] == "DENY"


def test_logs_are_json_with_request_ids_and_hold_no_secrets(tmp_path: Path) -> None:
    env = {"YIHAO_DATABASE_URL": f"sqlite:///{tmp_path}/y.db", "YIHAO_VAR_DIR": str(tmp_path),
           "YIHAO_LOG_LEVEL": "INFO", "YIHAO_REDIS_URL": "", "YIHAO_MASTER_KEY": "", "YIHAO_ARGON2_MEMORY_KIB": "8192"}
    yihao(env, "accounts", "create", "wang.wu", "--password-stdin", stdin="pass-phrase-for-logs\n")
    client = json.loads(yihao(env, "clients", "create", "--name", "Logs", "--redirect-uri",
                              "https://rp.example.gov.cn/cb", "--first-party", "--json").stdout)
    log = tmp_path / "serve.log"
    with ProcessServer(env, free_port(), log) as server:
        rp = RelyingParty(server.url, client["client_id"], client["client_secret"], "https://rp.example.gov.cn/cb")
        auth = rp.authorization()
        browser = Browser()
        params = callback_params(browser.login(auth.url, "wang.wu", "pass-phrase-for-logs", stop_at=rp.redirect_uri))
        token = rp.fetch_token(params["code"], auth.verifier)
        rp.userinfo(token["access_token"])
        browser.close()
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    access = [line for line in lines if line["logger"] == "yihao.access"]
    assert access and all(len(line["request_id"]) == 32 for line in access)
    text = log.read_text()
    for secret in ("pass-phrase-for-logs", "wang.wu", params["code"], token["access_token"],
                   client["client_secret"], auth.state, auth.nonce):
        assert secret not in text


def test_a_worker_freezes_what_start_up_made_out_of_the_collectors_scans(tmp_path: Path) -> None:
    """A worker's start-up objects live as long as it does: the entry point freezes them (gc.freeze), so
    full collections under load scan only what requests make."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "YIHAO_DATABASE_URL": f"sqlite:///{tmp_path}/y.db", "YIHAO_VAR_DIR": str(tmp_path),
           "YIHAO_REDIS_URL": "", "YIHAO_MASTER_KEY": "", "YIHAO_LOG_LEVEL": "WARNING"}
    script = ("import gc; from idp.asgi import app_from_env; before = gc.get_freeze_count(); app_from_env(); "
              "print(before, gc.get_freeze_count())")
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    before, after = map(int, done.stdout.split())
    assert before == 0 and after > 50_000  # the modules, the ORM and the core: tens of thousands of objects
