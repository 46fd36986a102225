"""Audit events are written off the request path, in batches, and none is lost: flush, shutdown, failures."""
from __future__ import annotations

import json
import logging
import signal
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest
from sqlalchemy import Engine, create_engine, select, text

from idp import db, events
from idp.models import AuditEvent
from tests.conftest import Backend, _postgres_database, make_settings
from tests.idp.conftest import Person, Provider, RpFactory
from tests.live import ProcessServer, free_port, yihao
from tests.rp import Browser, callback_params, tokens_after_login


def _rows(engine: Engine, subject: str) -> list[Any]:
    with engine.connect() as connection:
        return list(connection.execute(text("SELECT event, address, request_id FROM audit_event "
                                            "WHERE subject = :s ORDER BY id"), {"s": subject}))


def test_every_event_of_a_code_flow_is_in_the_audit_table_after_flush(provider: Provider, person: Person,
                                                                      make_rp: RpFactory) -> None:
    tokens_after_login(make_rp(), person.username, person.password)
    events.flush()
    rows = _rows(provider.core.engine, person.id)
    assert [row.event for row in rows] == [events.ACCOUNT_CREATED, events.LOGIN_SUCCEEDED, events.CONSENT_GIVEN,
                                           events.TOKEN_ISSUED]
    # Request id and client address are those of the request that recorded the event, not of the writer.
    assert [row.address for row in rows] == [None, "127.0.0.1", "127.0.0.1", "127.0.0.1"]
    assert rows[0].request_id is None and len({row.request_id for row in rows[1:]}) == 3


@pytest.fixture
def scratch_engine(backend: Backend, tmp_path: Path) -> Iterator[Engine]:
    """A database of its own, so that taking its audit table away disturbs no other test."""
    if backend.name == "sqlite":
        urls: Iterator[str] = iter([f"sqlite:///{tmp_path}/scratch.db"])
    else:
        urls = _postgres_database()
    for url in urls:
        engine = db.make_engine(make_settings(Backend(backend.name, url, None), tmp_path).database_url)
        db.upgrade(engine)
        yield engine
        engine.dispose()


def test_a_batch_the_database_refuses_is_retried_until_it_is_written(scratch_engine: Engine,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    writer = events.AuditWriter(scratch_engine, interval=0.01)
    subject = uuid.uuid4().hex
    try:
        with scratch_engine.begin() as connection:
            connection.execute(text("ALTER TABLE audit_event RENAME TO audit_event_away"))
        with caplog.at_level(logging.ERROR, logger="yihao.audit"):
            for reason in ("credentials", "locked", "credentials"):
                writer.put(events.audit_row(events.LOGIN_FAILED, outcome="failure", subject=subject, reason=reason))
            assert not writer.flush(timeout=0.5)  # the table is away: nothing can be written yet
            with scratch_engine.begin() as connection:
                connection.execute(text("ALTER TABLE audit_event_away RENAME TO audit_event"))
            assert writer.flush(timeout=15)
    finally:
        writer.close()
    with scratch_engine.connect() as connection:
        details = connection.execute(select(AuditEvent.details).where(AuditEvent.subject == subject)
                                     .order_by(AuditEvent.id)).scalars().all()  # type: ignore[arg-type]
    assert [d["reason"] for d in details] == ["credentials", "locked", "credentials"]
    failures = [r.getMessage() for r in caplog.records if "not written" in r.getMessage()]
    assert failures and not any(subject in message for message in failures)  # errors say what failed, not whom


def test_close_writes_what_waits_for_its_batch(scratch_engine: Engine) -> None:
    writer = events.AuditWriter(scratch_engine, interval=60)
    subject = uuid.uuid4().hex
    writer.put(events.audit_row(events.LOGOUT, subject=subject))
    assert _rows(scratch_engine, subject) == []  # still waiting for its batch
    writer.close()
    assert [row.event for row in _rows(scratch_engine, subject)] == [events.LOGOUT]


@pytest.mark.multiprocess
def test_stopping_the_server_writes_the_events_still_queued(backend: Backend, tmp_path: Path) -> None:
    settings = make_settings(backend, tmp_path)
    # A batch window longer than the test: only a flush at exit can put the rows in the table.
    env = {"YIHAO_DATABASE_URL": settings.database_url, "YIHAO_REDIS_URL": backend.redis_url or "",
           "YIHAO_MASTER_KEY": settings.master_key, "YIHAO_VAR_DIR": str(tmp_path), "YIHAO_LOG_LEVEL": "WARNING",
           "YIHAO_REDIS_PREFIX": f"yihao-test:{uuid.uuid4().hex}:", "YIHAO_ARGON2_MEMORY_KIB": "8192",
           "YIHAO_AUDIT_BATCH_MS": "60000"}
    username, password = f"p{uuid.uuid4().hex[:10]}", "s3cret-pass-word"
    assert yihao(env, "db", "upgrade").returncode == 0
    created = yihao(env, "accounts", "create", username, "--password-stdin", "--json", stdin=password + "\n")
    assert created.returncode == 0, created.stderr
    account = json.loads(created.stdout)["id"]
    engine = create_engine(settings.database_url)
    assert [row.event for row in _rows(engine, account)] == [events.ACCOUNT_CREATED]  # the command wrote it on exit
    port = free_port()
    client = json.loads(yihao(env | {"YIHAO_ISSUER": f"http://127.0.0.1:{port}"}, "clients", "create", "--name",
                              "Audit", "--redirect-uri", "https://rp.example.gov.cn/cb", "--first-party",
                              "--json").stdout)
    with ProcessServer(env, port, tmp_path / "server.log") as server:
        browser = Browser()
        query = f"response_type=code&client_id={client['client_id']}&redirect_uri=https://rp.example.gov.cn/cb" \
                "&scope=openid&code_challenge_method=S256&code_challenge=" + "E" * 43
        response = browser.login(f"{server.url}/authorize?{query}", username, password,
                                 stop_at="https://rp.example.gov.cn/cb")
        browser.close()
        assert "code" in callback_params(response)
        assert len(_rows(engine, account)) == 1  # the login is recorded but still queued
    assert server.process is not None and server.process.returncode in (0, -signal.SIGTERM)  # stopped, not killed
    assert [row.event for row in _rows(engine, account)] == [events.ACCOUNT_CREATED, events.LOGIN_SUCCEEDED]
    engine.dispose()
