"""`yihao audit verify`: walk the hash chain, name the first record that does not follow (exit 1).

`yihao audit export [--since WHEN]`: the records as JSON Lines on standard output, in chain order,
with their hashes, so an export can be checked against the chain (and kept elsewhere).
"""
from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone

from sqlalchemy import Engine

from idp import audit, db
from idp.crypto import load_master_key
from idp.settings import ConfigError, Settings, load_settings


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("audit", help="the audit trail")
    verbs = parser.add_subparsers(dest="audit_verb", required=True)
    verify = verbs.add_parser("verify", help="check the hash chain; exit 1 at the first bad record")
    verify.set_defaults(run=run_verify)
    export = verbs.add_parser("export", help="print the records as JSON Lines")
    export.add_argument("--since", type=_when, help="only records at or after this ISO 8601 date or time (UTC if no zone)")
    export.set_defaults(run=run_export)


def _when(raw: str) -> datetime:
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date or time: {raw!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _open() -> tuple[Settings, Engine, bytes]:
    settings = load_settings()
    key = audit.chain_key(load_master_key(settings))
    engine = db.make_engine(settings.database_url)
    if settings.embedded:
        db.upgrade(engine, audit_chain_key=key)  # as `serve` does
    elif not db.has_schema(engine):
        raise ConfigError("YIHAO_DATABASE_URL", "the database has no schema yet; run `yihao db upgrade`")
    return settings, engine, key


def run_verify(args: argparse.Namespace) -> int:
    _, engine, key = _open()
    try:
        verdict = audit.verify(engine, key)
    finally:
        engine.dispose()
    if not verdict.intact:
        print(f"audit chain broken at seq {verdict.bad_seq}: {verdict.problem} "
              f"({verdict.records} records before it are intact)")
        return 1
    print(f"audit chain intact: {verdict.records} records; head seq {verdict.head_seq} hash {verdict.head_hash}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    _, engine, _ = _open()
    try:
        for record in audit.export(engine, args.since):
            sys.stdout.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
    finally:
        engine.dispose()
    return 0
