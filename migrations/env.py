"""Alembic environment: imports every package's models so autogenerate sees the whole schema."""
from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine
from sqlmodel import SQLModel

import idp.models  # noqa: F401  (registers the tables)
import realname.models  # noqa: F401
import federation.models  # noqa: F401

config = context.config
target_metadata = SQLModel.metadata


def run_migrations_online() -> None:
    engine = config.attributes.get("engine") or create_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            # Several workers may start together: one migrates, the others wait for it.
            connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7460617)")
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `yihao db upgrade`")
run_migrations_online()
