"""`yihao keys rotate`: the next key starts signing, the old one stays published until its tokens expire.

`yihao keys rewrap`: re-seal personal identifiers under the newest PII key id, in batches, while
the service runs (rows under the old and the new id are both readable meanwhile).
"""
from __future__ import annotations

import argparse
import sys

from idp import events
from idp.cli.common import open_core
from idp.keys import ALGORITHMS


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("keys", help="signing keys")
    verbs = parser.add_subparsers(dest="keys_verb", required=True)
    rotate = verbs.add_parser("rotate", help="rotate signing keys")
    rotate.add_argument("--alg", action="append", choices=ALGORITHMS, help="only these algorithms (default: all)")
    rotate.set_defaults(run=run_rotate)
    rewrap = verbs.add_parser("rewrap", help="re-encrypt ID numbers and credit codes under the newest PII key")
    rewrap.add_argument("--batch-size", type=int, default=1000, help="rows per transaction (default 1000)")
    rewrap.set_defaults(run=run_rewrap)


def run_rotate(args: argparse.Namespace) -> int:
    settings, core = open_core()
    try:
        core.keys.ensure()
        retire_after = max(settings.access_token_ttl, settings.id_token_ttl) + 300
        kids = core.keys.rotate(retire_after, tuple(args.alg or ALGORITHMS))
        events.record(events.KEYS_ROTATED, actor="cli", kids=kids)
    finally:
        core.close()
    for kid in kids:
        print(f"signing with {kid}")
    return 0


def run_rewrap(args: argparse.Namespace) -> int:
    from realname.rewrap import rewrap

    _, core = open_core()
    vault = core.vault
    try:
        moved = rewrap(core.engine, vault, batch_size=args.batch_size,
                       on_batch=lambda table, n: print(f"{table}: {n} rows so far", file=sys.stderr))
        events.record(events.PII_REWRAPPED, actor="cli", key_id=vault.key_id, rows=moved)
    finally:
        core.close()
    for table, count in moved.items():
        print(f"{table}: {count} rows moved to {vault.key_id}")
    return 0
