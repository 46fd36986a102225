"""`yihao db upgrade`: bring the schema to the newest migration."""
from __future__ import annotations

import argparse

from idp import db
from idp.audit import chain_key
from idp.crypto import load_master_key
from idp.settings import load_settings


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("db", help="database schema")
    verbs = parser.add_subparsers(dest="db_verb", required=True)
    upgrade = verbs.add_parser("upgrade", help="apply migrations up to the newest")
    upgrade.set_defaults(run=run_upgrade)


def run_upgrade(args: argparse.Namespace) -> int:
    settings = load_settings()
    engine = db.make_engine(settings.database_url)
    db.upgrade(engine, audit_chain_key=chain_key(load_master_key(settings)))
    print(f"database at revision {db.current_revision(engine)}")
    engine.dispose()
    return 0
