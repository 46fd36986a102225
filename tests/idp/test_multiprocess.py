"""The production shape without Docker: two `yihao serve` processes sharing PostgreSQL and Redis."""
from __future__ import annotations

import json
import uuid
from pathlib import Path

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
