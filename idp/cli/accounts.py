"""`yihao accounts create USERNAME --password-stdin`: a scriptable way to make an account."""
from __future__ import annotations

import argparse
import getpass
import json
import sys

from idp.accounts import AccountInputError
from idp.cli.common import open_core


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("accounts", help="citizen and enterprise accounts")
    verbs = parser.add_subparsers(dest="accounts_verb", required=True)
    create = verbs.add_parser("create", help="create an account with a password")
    create.add_argument("username")
    create.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    create.add_argument("--name", help="full name (the `name` claim)")
    create.add_argument("--email")
    create.add_argument("--json", action="store_true", help="print the result as JSON")
    create.set_defaults(run=run_create)


def run_create(args: argparse.Namespace) -> int:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("password: ")
    _settings, core = open_core()
    try:
        profile = core.accounts.create(args.username, password, name=args.name, email=args.email)
    except AccountInputError as exc:
        print(f"yihao: {exc}", file=sys.stderr)
        return 1
    finally:
        core.close()
    print(json.dumps({"id": profile.id, "username": profile.username}) if args.json else f"created account {profile.id}")
    return 0
