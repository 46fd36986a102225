"""`yihao upstreams add|list|links|unlink`: upstream identity providers and the links to them."""
from __future__ import annotations

import argparse
import json
import sys

from federation.upstream import ALGORITHMS, DEFAULT_ALGORITHMS, UpstreamError, UpstreamInputError
from idp import events
from idp.cli.common import open_core


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("upstreams", help="upstream identity providers (log in with …) and account links")
    verbs = parser.add_subparsers(dest="upstreams_verb", required=True)
    add = verbs.add_parser("add", help="register an OpenID Connect provider by its issuer (discovery)")
    add.add_argument("slug", help="short name used in URLs (a-z 0-9 -)")
    add.add_argument("--name", required=True, help="shown on the login page: Log in with NAME")
    add.add_argument("--issuer", required=True, help="issuer URL; https except on loopback")
    add.add_argument("--client-id", required=True)
    add.add_argument("--client-secret-stdin", action="store_true", help="read the client secret from standard input")
    add.add_argument("--scope", default="openid profile")
    add.add_argument("--trust-claim", action="append", default=[], dest="trusted_claims",
                     help="a claim this upstream is trusted for (repeatable), e.g. id_number, name")
    add.add_argument("--identity-level", type=int, default=1, help="identity level (1–4) its verified identities reach")
    add.add_argument("--acr-map", action="append", default=[], metavar="UPSTREAM=OURS",
                     help="map one of its acr values to ours (repeatable), e.g. loa/2=loa/2")
    add.add_argument("--may-create-accounts", action="store_true", help="a first login with no match creates an account")
    add.add_argument("--alg", action="append", choices=ALGORITHMS, dest="algorithms",
                     help=f"accepted signature algorithms (repeatable; default {' '.join(DEFAULT_ALGORITHMS)})")
    add.add_argument("--end-session", action="store_true", help="local logout also ends the upstream session")
    add.add_argument("--json", action="store_true")
    add.set_defaults(run=run_add)
    listing = verbs.add_parser("list", help="the configured upstreams")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(run=run_list)
    links = verbs.add_parser("links", help="account links (all, one upstream's, or one account's)")
    links.add_argument("--upstream")
    links.add_argument("--account")
    links.add_argument("--json", action="store_true")
    links.set_defaults(run=run_links)
    unlink = verbs.add_parser("unlink", help="remove an account link by its id (audited)")
    unlink.add_argument("link_id")
    unlink.set_defaults(run=run_unlink)


def run_add(args: argparse.Namespace) -> int:
    secret = sys.stdin.readline().rstrip("\r\n") if args.client_secret_stdin else None
    try:
        acr_map = dict(pair.split("=", 1) for pair in args.acr_map)
    except ValueError:
        print("yihao: --acr-map takes UPSTREAM=OURS", file=sys.stderr)
        return 1
    _settings, core = open_core()
    try:
        upstream = core.federation.upstreams.add(
            slug=args.slug, name=args.name, issuer=args.issuer.rstrip("/"), client_id=args.client_id,
            client_secret=secret, scope=args.scope, trusted_claims=args.trusted_claims,
            identity_level=args.identity_level, acr_map=acr_map, may_create=args.may_create_accounts,
            algorithms=args.algorithms or DEFAULT_ALGORITHMS, end_session=args.end_session)
        events.record(events.UPSTREAM_ADDED, actor="cli", upstream=upstream.slug, issuer=upstream.issuer)
    except (UpstreamInputError, UpstreamError) as exc:
        print(f"yihao: {exc}", file=sys.stderr)
        return 1
    finally:
        core.close()
    callback = core.settings.issuer + "/federation/callback"
    logout = f"{core.settings.issuer}/federation/{upstream.slug}/backchannel-logout"
    out = {"slug": upstream.slug, "issuer": upstream.issuer, "redirect_uri": callback, "backchannel_logout_uri": logout}
    print(json.dumps(out) if args.json else "\n".join(f"{k}: {v}" for k, v in out.items()))
    return 0


def run_list(args: argparse.Namespace) -> int:
    _settings, core = open_core()
    try:
        rows = [{"slug": u.slug, "name": u.name, "issuer": u.issuer, "trusted_claims": sorted(u.trusted_claims),
                 "identity_level": u.identity_level, "may_create": u.may_create, "enabled": u.enabled}
                for u in core.federation.upstreams.all()]
    finally:
        core.close()
    print(json.dumps(rows, ensure_ascii=False) if args.json else
          "\n".join(f"{r['slug']}\t{r['issuer']}\t{r['name']}" for r in rows))
    return 0


def run_links(args: argparse.Namespace) -> int:
    _settings, core = open_core()
    try:
        links = (core.federation.links.of_account(args.account) if args.account
                 else core.federation.links.all(args.upstream))
    finally:
        core.close()
    rows = [{"id": l.id, "upstream": l.upstream, "account": l.account_id, "linked_by": l.linked_by,
             "created_at": l.created_at.isoformat()} for l in links if not args.upstream or l.upstream == args.upstream]
    print(json.dumps(rows) if args.json else
          "\n".join(f"{r['id']}\t{r['upstream']}\t{r['account']}\t{r['linked_by']}" for r in rows))
    return 0


def run_unlink(args: argparse.Namespace) -> int:
    _settings, core = open_core()
    try:
        removed = core.federation.links.remove(args.link_id, actor="cli")
    finally:
        core.close()
    if not removed:
        print(f"yihao: no link {args.link_id}", file=sys.stderr)
        return 1
    print(f"removed link {args.link_id}")
    return 0
