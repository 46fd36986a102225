"""The migrations are the only way the schema is made: what they build is what the models say."""
from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

from idp import db
from tests.conftest import Backend


def test_the_migrated_schema_matches_the_models(backend: Backend, tmp_path: Path) -> None:
    import idp.models  # noqa: F401  (every table the migrations' environment knows)
    import realname.models  # noqa: F401

    url = backend.database_url if backend.name == "postgres" else f"sqlite:///{tmp_path / 'schema.db'}"
    engine = db.make_engine(url, pool_size=1)
    try:
        db.upgrade(engine)  # on PostgreSQL the session's database, migrated or not yet
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, SQLModel.metadata)
    finally:
        engine.dispose()
    assert differences == [], "models and migrations disagree; write a migration:\n" + "\n".join(map(str, differences))
