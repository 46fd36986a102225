"""Settings: defaults for the embedded mode, one clear line naming a bad setting."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from idp.settings import ConfigError, load_settings
from tests.live import yihao


def test_defaults_are_the_embedded_mode() -> None:
    settings = load_settings({})
    assert settings.issuer == "http://127.0.0.1:8000" and settings.bind == "127.0.0.1:8000"
    assert settings.embedded and settings.redis_url is None and settings.database_url.startswith("sqlite:///")


@pytest.mark.parametrize(("env", "setting"), [
    ({"YIHAO_ISSUER": "http://id.example.gov.cn"}, "YIHAO_ISSUER"),
    ({"YIHAO_ISSUER": "https://id.example.gov.cn/?x=1"}, "YIHAO_ISSUER"),
    ({"YIHAO_BIND": "nowhere"}, "YIHAO_BIND"),
    ({"YIHAO_DATABASE_URL": "mysql://x"}, "YIHAO_DATABASE_URL"),
    ({"YIHAO_REDIS_URL": "http://x"}, "YIHAO_REDIS_URL"),
    ({"YIHAO_REGISTRATION": "sometimes"}, "YIHAO_REGISTRATION"),
    ({"YIHAO_ACCESS_TOKEN_TTL": "ten"}, "YIHAO_ACCESS_TOKEN_TTL"),
    ({"YIHAO_WORKERS": "2"}, "YIHAO_WORKERS"),
    ({"YIHAO_DATABASE_URL": "postgresql://h/db"}, "YIHAO_MASTER_KEY"),
    ({"YIHAO_SESSION_IDLE_TTL": "7200", "YIHAO_SESSION_MAX_TTL": "3600"}, "YIHAO_SESSION_MAX_TTL"),
    ({"YIHAO_LOGOUT_RETRY_BASE": "60", "YIHAO_LOGOUT_RETRY_MAX": "30"}, "YIHAO_LOGOUT_RETRY_MAX"),
    ({"YIHAO_LOGOUT_MAX_ATTEMPTS": "0"}, "YIHAO_LOGOUT_MAX_ATTEMPTS"),
])
def test_invalid_setting_is_named(env: dict[str, str], setting: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(env)
    assert raised.value.setting == setting


def test_hsts_is_sent_only_for_an_https_issuer_off_loopback() -> None:
    assert load_settings({"YIHAO_ISSUER": "https://id.example.gov.cn"}).hsts
    assert not load_settings({"YIHAO_ISSUER": "https://localhost:8443"}).hsts
    assert not load_settings({"YIHAO_ISSUER": "https://127.0.0.1:8443"}).hsts
    assert not load_settings({}).hsts


def test_https_issuer_turns_on_secure_cookies() -> None:
    assert load_settings({"YIHAO_ISSUER": "https://id.example.gov.cn"}).secure_cookies
    assert not load_settings({}).secure_cookies


def test_toml_file_adds_to_the_environment_and_the_environment_wins(tmp_path: Path) -> None:
    path = tmp_path / "yihao.toml"
    path.write_text('access_token_ttl = 300\nYIHAO_CODE_TTL = 30\n')
    settings = load_settings({"YIHAO_CONFIG": str(path), "YIHAO_CODE_TTL": "45"})
    assert settings.access_token_ttl == 300 and settings.code_ttl == 45


def test_the_embedded_database_lives_in_the_var_dir(tmp_path: Path) -> None:
    state, elsewhere = tmp_path / "state", tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("YIHAO_")} | {"YIHAO_VAR_DIR": str(state)}
    result = subprocess.run([sys.executable, "-m", "idp", "db", "upgrade"], cwd=elsewhere, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert (state / "yihao.db").is_file()
    assert not (elsewhere / "var").exists()  # nothing written under the working directory


def test_a_database_url_that_is_set_wins_over_the_var_dir(tmp_path: Path) -> None:
    chosen = f"sqlite:///{tmp_path}/chosen.db"
    assert load_settings({"YIHAO_VAR_DIR": str(tmp_path / "v"), "YIHAO_DATABASE_URL": chosen}).database_url == chosen
    path = tmp_path / "yihao.toml"
    path.write_text(f'database_url = "{chosen}"\n')
    assert load_settings({"YIHAO_CONFIG": str(path), "YIHAO_VAR_DIR": str(tmp_path / "v")}).database_url == chosen
    path.write_text(f'var_dir = "{tmp_path / "w"}"\n')
    assert load_settings({"YIHAO_CONFIG": str(path)}).database_url == f"sqlite:///{tmp_path / 'w' / 'yihao.db'}"


def test_serve_with_a_bad_setting_stops_with_one_line_naming_it(tmp_path: Path) -> None:
    result = yihao({"YIHAO_ISSUER": "http://id.example.gov.cn", "YIHAO_VAR_DIR": str(tmp_path)}, "serve")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == ["yihao: invalid configuration: YIHAO_ISSUER: must use https (plain http is accepted only on loopback)"]
