"""Registry tables on every backend: a migrated database per session, emptied for each test."""
from __future__ import annotations

from typing import Iterator

import pytest
from sqlalchemy import Engine, text

from idp import db
from idp.crypto import MasterKey
from realname.pii import PiiVault
from tests.conftest import Backend

MASTER = MasterKey("test", b"k" * 32)  # the same secret as make_settings' YIHAO_MASTER_KEY


@pytest.fixture(scope="session")
def migrated(backend: Backend) -> Iterator[Engine]:
    engine = db.make_engine(backend.database_url, pool_size=2)
    db.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def engine(migrated: Engine) -> Engine:
    with migrated.begin() as connection:
        connection.execute(text("DELETE FROM registry_person"))
        connection.execute(text("DELETE FROM registry_entity"))
    return migrated


@pytest.fixture
def vault() -> PiiVault:
    return PiiVault(MASTER)
