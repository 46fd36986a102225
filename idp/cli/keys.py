"""`yihao keys rotate`: the next key starts signing, the old one stays published until its tokens expire."""
from __future__ import annotations

import argparse

from idp import events
from idp.cli.common import open_core
from idp.keys import ALGORITHMS


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("keys", help="signing keys")
    verbs = parser.add_subparsers(dest="keys_verb", required=True)
    rotate = verbs.add_parser("rotate", help="rotate signing keys")
    rotate.add_argument("--alg", action="append", choices=ALGORITHMS, help="only these algorithms (default: all)")
    rotate.set_defaults(run=run_rotate)


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
