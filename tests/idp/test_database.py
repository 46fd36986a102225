"""The database seen from the endpoints: reads survive connections the server has dropped."""
from __future__ import annotations

import psycopg
import pytest

from idp import events
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
