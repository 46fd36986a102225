"""The database seen from the endpoints: reads survive connections the server has dropped; SQLite's
write-ahead log is copied back by a thread of its own."""
from __future__ import annotations

import contextlib
import sqlite3
import time
from datetime import datetime, timezone
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import (JSON, BigInteger, Boolean, Column, DateTime, MetaData, String, Table, bindparam, func, insert,
                        select, update)
from sqlalchemy.exc import DBAPIError, IntegrityError

from idp import events
from idp.core import build_core
from idp.db import Checkpointer, DriverStatement, make_engine
from idp.models._base import aware
from tests.conftest import Backend, make_settings
from tests.idp.conftest import Person, Provider, RpFactory
from tests.rp import tokens_after_login


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)  # SQLite has no server to drop connections
def test_userinfo_answers_after_the_database_dropped_every_pooled_connection(provider: Provider, person: Person,
                                                                              make_rp: RpFactory) -> None:
    rp = make_rp(first_party=True)
    tokens, _ = tokens_after_login(rp, person.username, person.password)
    events.flush()  # the audit writer holds no connection either
    with psycopg.connect(provider.backend.database_url, autocommit=True) as admin:
        dropped = admin.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                "WHERE datname = current_database() AND pid <> pg_backend_pid()").fetchone()
    assert dropped is not None and dropped[0] >= 1
    provider.core.accounts.changed(person.id)  # so userinfo reads the account from the database, not its cache
    # The pool has no pre-ping: the read finds its connection dead, and is retried on a new one.
    info = rp.userinfo(tokens["access_token"])
    assert info.status_code == 200 and info.json()["sub"]


def test_sqlite_commits_reach_the_database_file_from_the_checkpointer_not_from_the_writers(tmp_path: Path) -> None:
    """A commit goes to the write-ahead log; the checkpointer thread copies it into the database file,
    while the request connections never checkpoint on their own (their threshold is only a backstop)."""
    path = tmp_path / "yihao.db"
    core = build_core(make_settings(Backend("sqlite", f"sqlite:///{path}", None), tmp_path), migrate=True)
    try:
        assert core.checkpointer is not None
        with core.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == Checkpointer.BACKSTOP_PAGES
        core.accounts.create("file-marker", "correct horse battery staple")

        def in_database_file() -> bool:  # immutable: the main file alone, the log unread
            with contextlib.closing(sqlite3.connect(f"file:{path}?immutable=1", uri=True)) as direct:
                try:
                    found = direct.execute("SELECT count(*) FROM account WHERE username = 'file-marker'").fetchone()
                except sqlite3.OperationalError:  # not even the schema has left the log yet
                    return False
            return bool(found[0])

        deadline = time.monotonic() + 10
        while not in_database_file():
            assert time.monotonic() < deadline, "the commit never left the write-ahead log"
            time.sleep(0.05)
    finally:
        core.close()


def test_the_checkpointer_is_for_sqlite_files_only_and_must_come_before_the_first_connection(tmp_path: Path) -> None:
    assert Checkpointer.attach(make_engine("sqlite://")) is None  # in memory: no log to copy back
    engine = make_engine(f"sqlite:///{tmp_path / 'late.db'}")
    with engine.connect():
        pass
    with pytest.raises(RuntimeError, match="before the engine's first connection"):
        Checkpointer.attach(engine)
    engine.dispose()


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_postgresql_has_no_checkpointer(provider: Provider) -> None:
    assert provider.core.checkpointer is None


def _probe_table() -> Table:
    return Table("driver_statement_probe", MetaData(), Column("id", String(8), primary_key=True),
                 Column("at", DateTime(timezone=True), nullable=False), Column("until", DateTime(timezone=True)),
                 Column("doc", JSON, nullable=False), Column("flag", Boolean, nullable=False),
                 Column("n", BigInteger, nullable=False), Column("note", String(64)),
                 Column("made", String(8), default=lambda: "made"))


def test_a_driver_statement_stores_and_returns_what_the_compiled_path_does(provider: Provider) -> None:
    """The hot statements (audit rows, refresh rotation) skip SQLAlchemy's per-execution processing:
    the stored bytes and the returned values must still be the compiled path's, on both backends."""
    table = _probe_table()
    engine = provider.core.engine
    table.create(engine)
    try:
        at = datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=timezone.utc)
        row = {"at": at, "until": None, "doc": {"acr": "loa/2", "名": ["a", 1, None]}, "flag": True, "n": 2**40,
               "note": "it's 100%", "made": "given"}
        columns = ["id", *row]
        with engine.begin() as connection:
            connection.execute(insert(table), [{"id": "compiled", **row}])
            DriverStatement(insert(table), columns=columns).execute_many(
                connection, [{"id": "driver", **row}, {"id": "driver2", **row, "flag": False, "until": at}])
        with engine.connect() as connection:
            raw = {r[0]: r[1:] for r in connection.exec_driver_sql(
                "SELECT id, at, until, doc, flag, n, note, made FROM driver_statement_probe")}
            read = {r.id: r._asdict() for r in connection.execute(select(table))}
        assert raw["driver"] == raw["compiled"]  # the database holds the same bytes
        assert read["driver"] | {"id": "compiled"} == read["compiled"]
        assert read["driver2"]["flag"] is False and read["driver2"]["until"] is not None

        spend = DriverStatement(update(table).where(table.c.id == bindparam("p_id"), table.c.n > bindparam("p_n"))
                                .values(note=bindparam("p_note"), until=bindparam("p_until"))
                                .returning(*table.c), returns=list(table.c))
        with engine.begin() as connection:
            returned = spend.execute(connection, {"p_id": "driver", "p_n": 5, "p_note": "spent", "p_until": at})
            missing = spend.execute(connection, {"p_id": "nobody", "p_n": 5, "p_note": "x", "p_until": at})
        with engine.connect() as connection:
            expected = connection.execute(select(table).where(table.c.id == "driver")).one()._asdict()
        assert missing is None
        assert returned._asdict() == expected
        assert returned.doc == row["doc"] and returned.flag is True and returned.note == "spent"
        assert aware(returned.until) == at

        with pytest.raises(ValueError, match="no defaults"), engine.begin() as connection:
            # a value the compiled path would make up (a column default) is refused, and nothing is written
            DriverStatement(insert(table), columns=["id", "at", "doc", "flag", "n"]).execute_many(
                connection, [{"id": "defaulted", "at": at, "doc": {}, "flag": False, "n": 1}])
        with engine.connect() as connection:
            assert connection.execute(select(func.count()).select_from(table)).scalar() == 3
    finally:
        table.drop(engine)


def test_a_driver_statement_fails_and_commits_as_any_statement_does(provider: Provider) -> None:
    """It runs on the connection's own cursor: its errors arrive wrapped as SQLAlchemy's, its work is
    part of the caller's transaction (rolled back whole on failure), and on a connection with no
    transaction yet it begins one, so the caller's commit() keeps what it wrote."""
    table = _probe_table()
    engine = provider.core.engine
    table.create(engine)
    add = DriverStatement(insert(table), columns=["id", "at", "doc", "flag", "n", "made"])
    at = datetime(2026, 3, 4, 5, 6, 7, tzinfo=timezone.utc)

    def row(key: str) -> dict[str, object]:
        return {"id": key, "at": at, "doc": {}, "flag": False, "n": 1, "made": "given"}

    def stored() -> list[str]:
        with engine.connect() as connection:
            return sorted(connection.execute(select(table.c.id)).scalars())

    try:
        with engine.connect() as connection:
            assert add.execute(connection, row("kept")) is None
            connection.commit()
        assert stored() == ["kept"]

        with pytest.raises(IntegrityError), engine.begin() as connection:
            add.execute(connection, row("undone"))
            add.execute(connection, row("kept"))  # the primary key is taken
        assert stored() == ["kept"]  # the transaction's first row went with it

        with engine.connect() as connection:
            with pytest.raises(IntegrityError):
                add.execute(connection, row("kept"))
            connection.rollback()
            add.execute(connection, row("after"))  # the connection is still good
            connection.commit()
        assert stored() == ["after", "kept"]
    finally:
        table.drop(engine)


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)  # SQLite has no server to drop connections
def test_a_driver_statement_on_a_dropped_connection_invalidates_it_as_any_statement_does(provider: Provider) -> None:
    table = _probe_table()
    engine = provider.core.engine
    table.create(engine)
    add = DriverStatement(insert(table), columns=["id", "at", "doc", "flag", "n", "made"])
    at = datetime(2026, 3, 4, 5, 6, 7, tzinfo=timezone.utc)
    try:
        events.flush()
        with engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
            with psycopg.connect(provider.backend.database_url, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = current_database() AND pid <> pg_backend_pid()")
            with pytest.raises(DBAPIError) as failed:
                add.execute(connection, {"id": "lost", "at": at, "doc": {}, "flag": False, "n": 1, "made": "given"})
            assert failed.value.connection_invalidated  # the pool replaces it, as for any statement
        with engine.begin() as connection:  # a new connection from the pool
            add.execute(connection, {"id": "found", "at": at, "doc": {}, "flag": False, "n": 1, "made": "given"})
        with engine.connect() as connection:
            assert list(connection.execute(select(table.c.id)).scalars()) == ["found"]
    finally:
        table.drop(engine)


def test_the_pool_hands_out_the_connection_returned_last(provider: Provider) -> None:
    """A request takes the connection the one before it gave back, while others wait idle: on SQLite a
    connection's page cache is dropped whenever another connection has written since its last use,
    so taking them in turn made every request read its pages again."""
    engine = provider.core.engine
    events.flush()
    with engine.connect() as first, engine.connect() as second:  # two connections in the pool
        first.exec_driver_sql("SELECT 1")
        second.exec_driver_sql("SELECT 1")
    used = set()
    for _ in range(5):
        with engine.begin() as connection:
            connection.exec_driver_sql("SELECT 1")
            used.add(id(connection.connection.dbapi_connection))
    assert len(used) == 1
