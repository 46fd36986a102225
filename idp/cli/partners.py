"""`yihao partners set CLIENT_ID …`: what a partner client may exchange (RFC 8693) or assert (RFC 7523)."""
from __future__ import annotations

import argparse
import json
import sys

from federation.partners import SELF, TOKEN_TYPES
from idp.cli.common import open_core


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("partners", help="partner rules for token exchange and JWT bearer grants")
    verbs = parser.add_subparsers(dest="partners_verb", required=True)
    put = verbs.add_parser("set", help="create or replace a partner client's rule")
    put.add_argument("client_id")
    put.add_argument("--subject-issuer", action="append", default=[], dest="subject_issuers",
                     help=f"issuer whose tokens it may present (repeatable; {SELF!r} = this provider)")
    put.add_argument("--token-type", action="append", default=[], dest="token_types", choices=sorted(TOKEN_TYPES),
                     help="subject_token_type it may present (repeatable)")
    put.add_argument("--audience", action="append", default=[], dest="audiences",
                     help="audience it may ask tokens for (repeatable; the first is the default)")
    put.add_argument("--scope", action="append", default=[], dest="scopes", help="scope it may ask for (repeatable)")
    put.add_argument("--actor-issuer", action="append", default=[], dest="actor_issuers",
                     help="issuer of actor tokens it may present, to act for someone (repeatable)")
    put.add_argument("--self-client", action="append", default=[], dest="self_clients",
                     help=f"with --subject-issuer {SELF}: another client whose tokens from this provider it may present "
                          "(repeatable; its own it always may)")
    put.set_defaults(run=run_set)


def run_set(args: argparse.Namespace) -> int:
    _settings, core = open_core()
    try:
        unknown = [c for c in (args.client_id, *args.self_clients) if core.clients.get(c) is None]
        if unknown:
            print(f"yihao: no client {unknown[0]}", file=sys.stderr)
            return 1
        rule = core.federation.partners.set(
            args.client_id, subject_issuers=args.subject_issuers, token_types=args.token_types,
            audiences=args.audiences, scopes=args.scopes, actor_issuers=args.actor_issuers,
            self_clients=args.self_clients)
    finally:
        core.close()
    print(json.dumps({"client_id": rule.client_id, "subject_issuers": sorted(rule.subject_issuers),
                      "audiences": list(rule.audiences), "self_clients": sorted(rule.self_clients)}))
    return 0
