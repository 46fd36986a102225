"""Backends for every test: (SQLite, in-process) always; (PostgreSQL, Redis) when reachable.

In CI (CI=true) an unreachable PostgreSQL or Redis fails the run instead of skipping.
"""
from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from idp.crypto import b64u
from idp.settings import Settings, load_settings

PG_ADMIN = os.environ.get("YIHAO_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("YIHAO_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
IN_CI = os.environ.get("CI", "").lower() == "true"


def _unreachable(what: str, why: str) -> None:
    message = f"{what} is not reachable ({why})"
    if IN_CI:
        pytest.fail(f"CI must test the production backend: {message}", pytrace=False)
    pytest.skip(f"{message}; set YIHAO_TEST_PG_URL / YIHAO_TEST_REDIS_URL to test it")


@dataclass(frozen=True)
class Backend:
    name: str
    database_url: str
    redis_url: str | None
    # Every test session gets its own Redis namespace: concurrent runs (xdist workers, other
    # checkouts on the same machine) never see each other's sessions, codes or throttles.
    redis_prefix: str = ""

    @property
    def production(self) -> bool:
        return self.redis_url is not None


def _postgres_database() -> Iterator[str]:
    import psycopg

    name = f"yihao_test_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as exc:
        _unreachable("PostgreSQL", str(exc).splitlines()[0])
    base = PG_ADMIN.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _redis_reachable() -> None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except (redis.RedisError, OSError) as exc:
        _unreachable("Redis", str(exc))


def _forget_redis_namespace(prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    for start in range(0, len(keys), 1000):
        client.delete(*keys[start : start + 1000])


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("sqlite") / "yihao.db"
        yield Backend("sqlite", f"sqlite:///{path}", None)
        return
    _redis_reachable()
    prefix = f"yihao-test-{uuid.uuid4().hex[:12]}:"
    for url in _postgres_database():
        yield Backend("postgres", url, REDIS_URL, prefix)
    _forget_redis_namespace(prefix)


def make_settings(backend: Backend, var_dir: Path, **overrides: str) -> Settings:
    env = {
        "YIHAO_DATABASE_URL": backend.database_url,
        "YIHAO_VAR_DIR": str(var_dir),
        "YIHAO_MASTER_KEY": b64u(b"k" * 32),
        "YIHAO_LOG_LEVEL": "WARNING",
        # Every test speaks from 127.0.0.1: the suite's deliberate failures must not lock that address
        # for the tests after them. Throttle tests use addresses of their own (tests/idp/test_throttle.py).
        "YIHAO_THROTTLE_ADDRESS_FAILURES": "1000000",
        **({"YIHAO_REDIS_URL": backend.redis_url, "YIHAO_REDIS_PREFIX": backend.redis_prefix} if backend.redis_url else {}),
        **overrides,
    }
    return load_settings(env)
