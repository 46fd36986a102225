"""The scriptable command line (DESIGN §3): accounts create, clients create, keys rotate, db upgrade."""
from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import create_engine, text

from tests.live import yihao


def _env(tmp_path: Path) -> dict[str, str]:
    return {"YIHAO_DATABASE_URL": f"sqlite:///{tmp_path}/cli.db", "YIHAO_VAR_DIR": str(tmp_path),
            "YIHAO_ARGON2_MEMORY_KIB": "8192", "YIHAO_LOG_LEVEL": "WARNING"}


def _scalar(tmp_path: Path, sql: str) -> object:
    with create_engine(f"sqlite:///{tmp_path}/cli.db").connect() as connection:
        return connection.execute(text(sql)).scalar()


def test_accounts_create_reads_the_password_from_stdin_and_stores_only_an_argon2id_hash(tmp_path: Path) -> None:
    result = yihao(_env(tmp_path), "accounts", "create", "zhang.san", "--password-stdin", "--json",
                   stdin="a long pass phrase\n")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["username"] == "zhang.san"
    stored = str(_scalar(tmp_path, "SELECT password_hash FROM account WHERE username = 'zhang.san'"))
    assert stored.startswith("$argon2id$v=19$m=8192,t=2,p=1$") and "a long pass phrase" not in stored


def test_accounts_create_refuses_a_taken_username(tmp_path: Path) -> None:
    env = _env(tmp_path)
    yihao(env, "accounts", "create", "li.si", "--password-stdin", stdin="first password\n")
    again = yihao(env, "accounts", "create", "li.si", "--password-stdin", stdin="second password\n")
    assert again.returncode == 1 and again.stderr.strip() == "yihao: username 'li.si' is taken"


def test_clients_create_prints_a_secret_once_and_stores_its_digest(tmp_path: Path) -> None:
    result = yihao(_env(tmp_path), "clients", "create", "--name", "医院预约 Hospital", "--redirect-uri",
                   "https://hospital.example.gov.cn/cb", "--redirect-uri", "https://hospital.example.gov.cn/cb2",
                   "--first-party", "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert len(out["client_secret"]) >= 43  # 256 bits, base64url
    stored = _scalar(tmp_path, f"SELECT secret_digest FROM client WHERE client_id = '{out['client_id']}'")
    assert stored and stored != out["client_secret"]


def test_clients_create_public_has_no_secret(tmp_path: Path) -> None:
    result = yihao(_env(tmp_path), "clients", "create", "--name", "App", "--redirect-uri",
                   "cn.gov.fuzhou.app:/callback", "--public", "--json")
    assert set(json.loads(result.stdout)) == {"client_id"}


def test_clients_create_refuses_a_plain_http_redirect_off_loopback(tmp_path: Path) -> None:
    result = yihao(_env(tmp_path), "clients", "create", "--name", "Bad", "--redirect-uri", "http://rp.example/cb")
    assert result.returncode == 1
    assert result.stderr.strip() == "yihao: redirect_uri 'http://rp.example/cb' must use https (http only on loopback)"


def test_keys_rotate_activates_the_published_next_key(tmp_path: Path) -> None:
    env = _env(tmp_path)
    yihao(env, "db", "upgrade")
    first = yihao(env, "keys", "rotate", "--alg", "ES256")
    assert first.returncode == 0, first.stderr
    kid = first.stdout.split()[-1]
    assert _scalar(tmp_path, f"SELECT state FROM signing_key WHERE kid = '{kid}'") == "active"
    assert _scalar(tmp_path, "SELECT count(*) FROM signing_key WHERE alg = 'ES256' AND state = 'retired'") == 1
    assert _scalar(tmp_path, "SELECT count(*) FROM signing_key WHERE alg = 'ES256' AND state = 'next'") == 1


def _head_revision() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parents[2] / "migrations"))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


def test_db_upgrade_is_idempotent(tmp_path: Path) -> None:
    env = _env(tmp_path)
    head = _head_revision()
    assert yihao(env, "db", "upgrade").stdout.strip() == f"database at revision {head}"
    assert yihao(env, "db", "upgrade").stdout.strip() == f"database at revision {head}"
    assert _scalar(tmp_path, "SELECT version_num FROM alembic_version") == head


def test_clients_create_registers_logout_uris_and_refuses_a_plain_http_one(tmp_path: Path) -> None:
    env = _env(tmp_path)
    result = yihao(env, "clients", "create", "--name", "Logout", "--redirect-uri", "https://rp.example.gov.cn/cb",
                   "--post-logout-redirect-uri", "https://rp.example.gov.cn/bye", "--client-id", "logout-rp",
                   "--backchannel-logout-uri", "https://rp.example.gov.cn/bc",
                   "--frontchannel-logout-uri", "https://rp.example.gov.cn/fc", "--json")
    assert result.returncode == 0, result.stderr
    row = _scalar(tmp_path, "SELECT backchannel_logout_uri || ' ' || frontchannel_logout_uri || ' ' || "
                            "post_logout_redirect_uris FROM client WHERE client_id = 'logout-rp'")
    assert row == 'https://rp.example.gov.cn/bc https://rp.example.gov.cn/fc ["https://rp.example.gov.cn/bye"]'
    refused = yihao(env, "clients", "create", "--name", "Bad", "--redirect-uri", "https://rp.example.gov.cn/cb",
                    "--backchannel-logout-uri", "http://rp.example.gov.cn/bc")
    assert refused.returncode == 1
    assert refused.stderr.strip() == ("yihao: backchannel_logout_uri 'http://rp.example.gov.cn/bc' must use https "
                                      "(http only on loopback)")


def test_clients_create_registers_a_service_for_client_credentials(tmp_path: Path) -> None:
    env = _env(tmp_path)
    result = yihao(env, "clients", "create", "--name", "Queue", "--grant-type", "client_credentials",
                   "--scope", "queue.read", "--resource", "https://api.example.gov.cn/queue",
                   "--default-resource", "https://api.example.gov.cn/queue", "--access-token-alg", "ES256", "--json")
    assert result.returncode == 0, result.stderr
    client_id = json.loads(result.stdout)["client_id"]
    row = _scalar(tmp_path, f"SELECT grant_types || ' ' || access_token_signed_response_alg || ' ' || default_resource "
                            f"FROM client WHERE client_id = '{client_id}'")
    assert row == '["client_credentials"] ES256 https://api.example.gov.cn/queue'
    missing = yihao(env, "clients", "create", "--name", "Web")
    assert missing.returncode == 1 and "at least one redirect_uri is required" in missing.stderr


def test_clients_create_registers_a_dpop_kiosk_without_a_redirect_uri(tmp_path: Path) -> None:
    env = _env(tmp_path)
    result = yihao(env, "clients", "create", "--name", "Kiosk", "--public", "--dpop-bound-access-tokens",
                   "--grant-type", "urn:ietf:params:oauth:grant-type:device_code", "--json")
    assert result.returncode == 0, result.stderr
    client_id = json.loads(result.stdout)["client_id"]
    assert _scalar(tmp_path, f"SELECT dpop_bound_access_tokens FROM client WHERE client_id = '{client_id}'") == 1
