"""`yihao enterprises create CREDIT_CODE` and `yihao enterprises add-agent …`: enterprise accounts from
the legal-entity registry, and the verified people who may act for them."""
from __future__ import annotations

import argparse
import json
import sys
from datetime import date, datetime, timezone
from typing import Callable

from idp.cli.common import open_core
from idp.core import Core
from realname.enterprises import ROLES, EnterpriseError
from realname.errors import ValidationError
from realname.pii import CreditCode


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("enterprises", help="enterprise accounts and their agents")
    verbs = parser.add_subparsers(dest="enterprises_verb", required=True)
    create = verbs.add_parser("create", help="create the account of an enterprise the legal-entity registry knows")
    create.add_argument("credit_code", metavar="CREDIT_CODE")
    create.add_argument("--json", action="store_true")
    create.set_defaults(run=run_create)
    agent = verbs.add_parser("add-agent", help="let a verified person act for a verified enterprise")
    agent.add_argument("--enterprise", required=True, metavar="CREDIT_CODE")
    agent.add_argument("--person", required=True, metavar="USERNAME")
    agent.add_argument("--role", required=True, choices=ROLES)
    agent.add_argument("--valid-from", type=_date, help="YYYY-MM-DD (default: now)")
    agent.add_argument("--valid-until", type=_date, help="YYYY-MM-DD (default: no end)")
    agent.set_defaults(run=run_add_agent)


def _date(raw: str) -> datetime:
    try:
        return datetime.combine(date.fromisoformat(raw), datetime.min.time(), timezone.utc)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a date YYYY-MM-DD") from None


def _code(raw: str) -> CreditCode | None:
    try:
        return CreditCode.parse(raw)
    except ValidationError as exc:
        print(f"yihao: the credit code is not valid: {exc.message_en} / {exc.message_zh}", file=sys.stderr)
        return None


def _run(raw_code: str, act: Callable[[Core, CreditCode], str]) -> int:
    """Validate the code, open the core, act; an EnterpriseError is one line on stderr and exit 1."""
    code = _code(raw_code)
    if code is None:
        return 1
    _settings, core = open_core()
    try:
        message = act(core, code)
    except EnterpriseError as exc:
        print(f"yihao: {exc}", file=sys.stderr)
        return 1
    finally:
        core.close()
    print(message)
    return 0


def run_create(args: argparse.Namespace) -> int:
    def create(core: Core, code: CreditCode) -> str:
        profile = core.enterprises.create(code)
        out = {"id": profile.id, "username": profile.username, "name": profile.name, "credit_code": code.masked}
        return json.dumps(out, ensure_ascii=False) if args.json else f"created enterprise account {profile.id} ({profile.name})"

    return _run(args.credit_code, create)


def run_add_agent(args: argparse.Namespace) -> int:
    def add(core: Core, code: CreditCode) -> str:
        enterprise_id = core.identities.find_enterprise(code)
        person = core.accounts.by_username(args.person)
        if enterprise_id is None:
            raise EnterpriseError("no enterprise account has this credit code (yihao enterprises create first)")
        if person is None:
            raise EnterpriseError(f"no account is called {args.person!r}")
        core.enterprises.add_agent(enterprise_id, person.id, args.role, valid_from=args.valid_from,
                                   valid_until=args.valid_until)
        return f"{args.person} may act for {code.masked} as {args.role}"

    return _run(args.enterprise, add)
