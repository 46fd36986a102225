"""Audit events are written off the request path, in batches, and none is lost: flush, shutdown, failures."""
from __future__ import annotations

import json
import logging
import signal
import threading
import uuid
from datetime import timezone
from pathlib import Path
from typing import Any, Iterator

import pytest
from sqlalchemy import Engine, create_engine, select, text

from idp import audit, db, events
from idp.crypto import b64u, load_master_key
from idp.models import AuditEvent
from tests.conftest import Backend, _postgres_database, make_settings
from tests.idp.conftest import Person, Provider, RpFactory, serve_provider
from tests.live import ProcessServer, free_port, yihao
from tests.rp import Browser, RelyingParty, callback_params, tokens_after_login


KEY = b"audit-chain-test-key-0123456789ab"


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
def empty_engine(backend: Backend, tmp_path: Path) -> Iterator[Engine]:
    """A database of its own, without a schema."""
    if backend.name == "sqlite":
        urls: Iterator[str] = iter([f"sqlite:///{tmp_path}/scratch.db"])
    else:
        urls = _postgres_database()
    for url in urls:
        engine = db.make_engine(make_settings(Backend(backend.name, url, None), tmp_path).database_url)
        yield engine
        engine.dispose()


@pytest.fixture
def scratch_engine(empty_engine: Engine) -> Engine:
    """A database of its own, so that taking its audit table away disturbs no other test."""
    db.upgrade(empty_engine)
    return empty_engine


def test_a_batch_the_database_refuses_is_retried_until_it_is_written(scratch_engine: Engine,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    writer = events.AuditWriter(scratch_engine, KEY, interval=0.01)
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
    writer = events.AuditWriter(scratch_engine, KEY, interval=60)
    subject = uuid.uuid4().hex
    writer.put(events.audit_row(events.LOGOUT, subject=subject))
    assert _rows(scratch_engine, subject) == []  # still waiting for its batch
    writer.close()
    assert [row.event for row in _rows(scratch_engine, subject)] == [events.LOGOUT]


def test_an_event_recorded_on_the_event_loop_after_close_is_written_from_the_pool(scratch_engine: Engine) -> None:
    """A closed writer (or a full queue) makes `put` write or wait: code on the event loop (idp.bridge)
    does that on the pool, never on the loop, where the engine would refuse it and the row be lost."""
    import asyncio

    from idp import bridge

    writer = events.AuditWriter(scratch_engine, KEY, interval=60)
    writer.close()
    subject = uuid.uuid4().hex
    asyncio.run(bridge.run(writer.put, events.audit_row(events.LOGOUT, subject=subject)))
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


# -- the hash chain ------------------------------------------------------------------------------

def _write(engine: Engine, count: int, key: bytes = KEY, subject: str = "s") -> None:
    writer = events.AuditWriter(engine, key, interval=0.01, batch_size=3)  # several batches
    for n in range(count):
        writer.put(events.audit_row(events.LOGIN_FAILED, outcome="failure", subject=subject, reason="credentials", n=n))
    writer.close()


def _sql(engine: Engine, *statements: str) -> None:
    with engine.begin() as connection:
        for statement in statements:
            connection.execute(text(statement))


def test_a_chain_written_in_batches_verifies_in_sequence_order(scratch_engine: Engine) -> None:
    _write(scratch_engine, 7)
    verdict = audit.verify(scratch_engine, KEY)
    assert verdict.intact and verdict.records == verdict.head_seq == 7
    exported = list(audit.export(scratch_engine))
    assert [r["seq"] for r in exported] == list(range(1, 8)) and [r["details"]["n"] for r in exported] == list(range(7))
    assert exported[0]["prev_hash"] == audit.GENESIS
    assert all(b["prev_hash"] == a["row_hash"] for a, b in zip(exported, exported[1:]))



# What a batch load must carry unchanged: COPY's text format escapes tabs, newlines and backslashes, and
# spells NULL as \N; a value that looks like an escape must come back as it went in.
AWKWARD = [
    {"subject": None, "client_id": "c\tone", "actor": "\\N", "details": {}},
    {"subject": "line\nbreak", "client_id": None, "actor": "back\\slash", "details": {"q": "\"quoted\" \\N \r\n\t"}},
    {"subject": "张三", "client_id": "客户端", "actor": None, "details": {"nested": {"list": [1, None, "\u0000x"]},
                                                                        "名": "福州"}},
]


def test_values_a_batch_load_could_mangle_come_back_as_recorded(scratch_engine: Engine) -> None:
    writer = events.AuditWriter(scratch_engine, KEY, interval=0.01)
    recorded = []
    for fields in AWKWARD:
        row = events.audit_row(events.TOKEN_ISSUED, subject=fields["subject"], client_id=fields["client_id"],
                               actor=fields["actor"], **fields["details"])
        recorded.append(row)
        writer.put(row)
    writer.close()
    exported = list(audit.export(scratch_engine))
    assert [{k: r[k] for k in ("subject", "client_id", "actor", "details")} for r in exported] == AWKWARD
    assert [r["at"] for r in exported] == [row["at"].astimezone(timezone.utc).isoformat(timespec="microseconds")
                                           for row in recorded]
    assert audit.verify(scratch_engine, KEY).intact

TAMPERING = {
    "altered": (["UPDATE audit_event SET outcome = 'success' WHERE seq = 4"], 4),
    "altered time": (["UPDATE audit_event SET at = (SELECT at FROM audit_event WHERE seq = 1) WHERE seq = 5"], 5),
    "deleted": (["DELETE FROM audit_event WHERE seq = 3"], 3),
    "first deleted": (["DELETE FROM audit_event WHERE seq = 1"], 1),
    "reordered": (["UPDATE audit_event SET seq = 100 WHERE seq = 2", "UPDATE audit_event SET seq = 2 WHERE seq = 3",
                   "UPDATE audit_event SET seq = 3 WHERE seq = 100"], 2),
    "inserted": (["UPDATE audit_event SET seq = seq + 100 WHERE seq >= 4",
                  "UPDATE audit_event SET seq = seq - 99 WHERE seq >= 104",
                  "INSERT INTO audit_event (seq, at, event, outcome, details, prev_hash, row_hash) "
                  "SELECT 4, at, 'login.succeeded', 'success', '{}', row_hash, row_hash FROM audit_event WHERE seq = 3"], 4),
    "appended": (["INSERT INTO audit_event (seq, at, event, outcome, details, prev_hash, row_hash) "
                  "SELECT 8, at, 'login.succeeded', 'success', '{}', row_hash, row_hash FROM audit_event WHERE seq = 7"], 8),
}


@pytest.mark.parametrize("kind", list(TAMPERING))
def test_verify_names_the_first_record_tampered_with(scratch_engine: Engine, kind: str) -> None:
    _write(scratch_engine, 7)
    statements, bad = TAMPERING[kind]
    _sql(scratch_engine, *statements)
    verdict = audit.verify(scratch_engine, KEY)
    assert not verdict.intact and verdict.bad_seq == bad, verdict
    assert verdict.records == bad - 1


def test_a_chain_cannot_be_recomputed_without_the_key(scratch_engine: Engine) -> None:
    _write(scratch_engine, 3)
    _write(scratch_engine, 1, key=b"a key that is not the master key's")  # a forger appends with his own key
    assert audit.verify(scratch_engine, KEY).bad_seq == 4


def test_concurrent_writers_in_separate_processes_keep_one_gap_free_chain(scratch_engine: Engine,
                                                                          caplog: pytest.LogCaptureFixture) -> None:
    other = create_engine(scratch_engine.url.render_as_string(hide_password=False))  # another process's pool
    writers = [events.AuditWriter(engine, KEY, interval=0.001, batch_size=5) for engine in (scratch_engine, other)]

    def record(writer: events.AuditWriter) -> None:
        for n in range(150):
            writer.put(events.audit_row(events.TOKEN_ISSUED, subject="s", n=n))

    threads = [threading.Thread(target=record, args=(writer,)) for writer in writers for _ in range(2)]
    with caplog.at_level(logging.ERROR, logger="yihao.audit"):
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for writer in writers:
            writer.close()
    other.dispose()
    verdict = audit.verify(scratch_engine, KEY)
    assert verdict.intact and verdict.records == 600
    assert not caplog.records  # serialised by the lock, not by a unique-key clash and a retry


def test_cli_verify_passes_on_an_intact_chain_and_fails_naming_the_bad_record(backend: Backend, tmp_path: Path,
                                                                               scratch_engine: Engine) -> None:
    env = _cli_env(backend, tmp_path, scratch_engine)
    _write(scratch_engine, 5, key=audit.chain_key(load_master_key(make_settings(backend, tmp_path))))
    intact = yihao(env, "audit", "verify")
    assert intact.returncode == 0 and intact.stdout.startswith("audit chain intact: 5 records; head seq 5 hash ")
    _sql(scratch_engine, "UPDATE audit_event SET details = '{\"reason\": \"locked\"}' WHERE seq = 2")
    broken = yihao(env, "audit", "verify")
    assert broken.returncode == 1
    assert broken.stdout.strip() == ("audit chain broken at seq 2: altered: its hash does not match its contents "
                                     "(1 records before it are intact)")


def test_cli_export_prints_json_lines_since_a_time(backend: Backend, tmp_path: Path, scratch_engine: Engine) -> None:
    env = _cli_env(backend, tmp_path, scratch_engine)
    _write(scratch_engine, 2)
    _sql(scratch_engine, "UPDATE audit_event SET at = '2020-01-01 00:00:00' WHERE seq = 1")
    everything = yihao(env, "audit", "export")
    assert everything.returncode == 0 and len(everything.stdout.splitlines()) == 2
    since = yihao(env, "audit", "export", "--since", "2021-01-01")
    lines = [json.loads(line) for line in since.stdout.splitlines()]
    assert [line["seq"] for line in lines] == [2]
    assert set(lines[0]) == {"seq", "at", "event", "outcome", "actor", "subject", "client_id", "address",
                             "request_id", "details", "prev_hash", "row_hash"}
    assert lines[0]["details"] == {"reason": "credentials", "n": 1}


def _cli_env(backend: Backend, tmp_path: Path, engine: Engine) -> dict[str, str]:
    settings = make_settings(backend, tmp_path)
    return {"YIHAO_DATABASE_URL": engine.url.render_as_string(hide_password=False), "YIHAO_REDIS_URL": "",
            "YIHAO_MASTER_KEY": settings.master_key, "YIHAO_VAR_DIR": str(tmp_path), "YIHAO_LOG_LEVEL": "WARNING"}


def test_the_upgrade_chains_the_rows_written_before_the_chain_and_needs_the_key_for_it(empty_engine: Engine) -> None:
    db.upgrade(empty_engine, "0003")
    _sql(empty_engine, *[f"INSERT INTO audit_event (at, event, outcome, details) VALUES "
                         f"('2026-01-0{n} 08:00:00.12345{n}', 'logout', 'success', '{{\"n\": {n}}}')" for n in (1, 2, 3)])
    with pytest.raises(RuntimeError, match="yihao db upgrade"):
        db.upgrade(empty_engine)
    db.upgrade(empty_engine, audit_chain_key=KEY)
    _write(empty_engine, 2)  # the writer continues the migrated chain
    verdict = audit.verify(empty_engine, KEY)
    assert verdict.intact and verdict.records == 5
    assert [r["details"] for r in audit.export(empty_engine)][:3] == [{"n": 1}, {"n": 2}, {"n": 3}]


def test_a_login_is_recorded_on_the_chain(provider: Provider, person: Person, make_rp: RpFactory) -> None:
    tokens_after_login(make_rp(), person.username, person.password)
    events.flush()
    assert audit.verify(provider.core.engine, audit.chain_key(provider.core.master)).intact


def test_two_providers_in_one_process_each_audit_into_their_own_table(provider: Provider, person: Person,
                                                                        make_rp: RpFactory, empty_engine: Engine,
                                                                        tmp_path: Path) -> None:
    # The demo runs the province beside the city; the one built last must not take the other's events.
    own = Backend(provider.backend.name, empty_engine.url.render_as_string(hide_password=False),
                  provider.backend.redis_url, provider.backend.redis_prefix)
    with serve_provider(own, tmp_path, YIHAO_MASTER_KEY=b64u(b"o" * 32)) as other:
        with events.using(other.core.audit):  # a direct call, as a command-line tool makes
            stranger = other.core.accounts.create(f"o{uuid.uuid4().hex[:9]}", "another good password")
        client, secret = other.core.clients.create(name="其他 Other", redirect_uris=["https://o.example/cb"])
        tokens_after_login(RelyingParty(other.url, client.client_id, secret, "https://o.example/cb"),
                           stranger.username, "another good password")
        tokens_after_login(make_rp(), person.username, person.password)  # at the provider built first
        assert events.flush()
        assert [row.event for row in _rows(provider.core.engine, person.id)][-3:] == [
            events.LOGIN_SUCCEEDED, events.CONSENT_GIVEN, events.TOKEN_ISSUED]
        assert [row.event for row in _rows(other.core.engine, stranger.id)] == [
            events.ACCOUNT_CREATED, events.LOGIN_SUCCEEDED, events.CONSENT_GIVEN, events.TOKEN_ISSUED]
        assert _rows(other.core.engine, person.id) == [] and _rows(provider.core.engine, stranger.id) == []
        for core in (provider.core, other.core):
            assert audit.verify(core.engine, audit.chain_key(core.master)).intact


def test_details_are_copied_when_recorded_and_refused_there_if_json_cannot_hold_them() -> None:
    nested = {"scopes": ["openid"]}
    row = events.audit_row(events.TOKEN_ISSUED, grant_type="refresh_token", count=2, offline=True, hint=None,
                           nested=nested)
    nested["scopes"].append("changed afterwards")  # the caller's object changes; the recorded row does not
    assert row["details"] == {"grant_type": "refresh_token", "count": 2, "offline": True, "hint": None,
                              "nested": {"scopes": ["openid"]}}
    with pytest.raises(TypeError):  # in the caller, not later in the writer thread
        events.audit_row(events.TOKEN_ISSUED, when=object())
    with pytest.raises(ValueError):  # NaN: JSON in the table cannot hold it
        events.audit_row(events.TOKEN_ISSUED, ratio=float("nan"))
