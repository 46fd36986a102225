"""The database seen from the endpoints: reads survive connections the server has dropped; SQLite's
write-ahead log is copied back by a thread of its own."""
from __future__ import annotations

import contextlib
import sqlite3
import time
from pathlib import Path

import psycopg
import pytest

from idp import events
from idp.core import build_core
from idp.db import Checkpointer, make_engine
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
