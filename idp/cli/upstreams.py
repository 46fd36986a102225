"""`yihao upstreams add|list|links|unlink`: upstream identity providers (OpenID Connect or plain OAuth 2)
and the links to them."""
from __future__ import annotations

import argparse
import json
import sys

from federation.oauth2 import MAPPABLE
from federation.upstream import (ALGORITHMS, DEFAULT_ALGORITHMS, OAUTH2, OIDC, TOKEN_AUTH_METHODS, TRUSTABLE,
                                 UpstreamConfig, UpstreamError, UpstreamInputError)
from idp import events
from idp.cli.common import open_core
from idp.core import Core


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("upstreams", help="upstream identity providers (log in with …) and account links")
    verbs = parser.add_subparsers(dest="upstreams_verb", required=True)
    add = verbs.add_parser("add", help="register an OpenID Connect provider by its issuer (discovery), or a plain "
                                       "OAuth 2 provider by its endpoints and a userinfo mapping (--kind oauth2)")
    add.add_argument("slug", help="short name used in URLs (a-z 0-9 -)")
    add.add_argument("--name", required=True, help="shown on the login page: Log in with NAME")
    add.add_argument("--kind", choices=(OIDC, OAUTH2), default=OIDC,
                     help="oidc (default): discovery and ID tokens; oauth2: no ID token, who signed in comes from userinfo")
    add.add_argument("--issuer", help="oidc: issuer URL; https except on loopback")
    add.add_argument("--authorization-endpoint", help="oauth2: the authorization endpoint")
    add.add_argument("--token-endpoint", help="oauth2: the token endpoint")
    add.add_argument("--userinfo-endpoint", help="oauth2: where the access token says who signed in (JSON)")
    add.add_argument("--map", action="append", default=[], metavar="CLAIM=PATH", dest="claim_map",
                     help=f"oauth2: which userinfo field is one of our claims (repeatable; {' '.join(MAPPABLE)}; "
                          "a dotted PATH reaches nested fields), e.g. sub=id, name=profile.real_name; sub is required")
    add.add_argument("--client-id", required=True)
    add.add_argument("--client-secret-stdin", action="store_true", help="read the client secret from standard input")
    add.add_argument("--token-auth", choices=TOKEN_AUTH_METHODS, default=TOKEN_AUTH_METHODS[0],
                     help="how the client authenticates at the token endpoint")
    add.add_argument("--scope", help="scopes asked for (oidc default: openid profile; oauth2 default: none)")
    add.add_argument("--trust-claim", action="append", default=[], dest="trusted_claims", choices=TRUSTABLE,
                     help="a claim this upstream is trusted for (repeatable), e.g. id_number, name")
    add.add_argument("--identity-level", type=int, default=1, help="identity level (1–4) its verified identities reach")
    add.add_argument("--acr-map", action="append", default=[], metavar="UPSTREAM=OURS",
                     help="map one of its acr values to ours (repeatable), e.g. loa/2=loa/2")
    add.add_argument("--may-create-accounts", action="store_true", help="a first login with no match creates an account")
    add.add_argument("--alg", action="append", choices=ALGORITHMS, dest="algorithms",
                     help=f"oidc: accepted signature algorithms (repeatable; default {' '.join(DEFAULT_ALGORITHMS)})")
    add.add_argument("--end-session", action="store_true", help="oidc: local logout also ends the upstream session")
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


def _pairs(option: str, values: list[str]) -> dict[str, str]:
    try:
        return dict(pair.split("=", 1) for pair in values)
    except ValueError:
        raise UpstreamInputError(f"{option} takes NAME=VALUE") from None


def _add(core: Core, args: argparse.Namespace, secret: str | None) -> UpstreamConfig:
    """The upstream of the kind asked for; UpstreamInputError names an option missing for that kind."""
    common = dict(slug=args.slug, name=args.name, client_id=args.client_id, client_secret=secret,
                  trusted_claims=args.trusted_claims, identity_level=args.identity_level,
                  acr_map=_pairs("--acr-map", args.acr_map), may_create=args.may_create_accounts,
                  token_auth=args.token_auth)
    if args.kind == OIDC:
        if not args.issuer:
            raise UpstreamInputError("--issuer is required for an OpenID Connect upstream")
        return core.federation.upstreams.add(issuer=args.issuer.rstrip("/"), scope=args.scope or "openid profile",
                                             algorithms=args.algorithms or DEFAULT_ALGORITHMS,
                                             end_session=args.end_session, **common)
    if args.issuer or args.algorithms or args.end_session:
        raise UpstreamInputError("--issuer, --alg and --end-session are for OpenID Connect upstreams only")
    endpoints = {name: getattr(args, name) for name in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint")}
    missing = [name for name, value in endpoints.items() if not value]
    if missing:
        raise UpstreamInputError(f"--{missing[0].replace('_', '-')} is required for an OAuth 2 upstream")
    return core.federation.upstreams.add_oauth2(claim_map=_pairs("--map", args.claim_map), scope=args.scope or "",
                                                **endpoints, **common)


def run_add(args: argparse.Namespace) -> int:
    secret = sys.stdin.readline().rstrip("\r\n") if args.client_secret_stdin else None
    _settings, core = open_core()
    try:
        upstream = _add(core, args, secret)
        events.record(events.UPSTREAM_ADDED, actor="cli", upstream=upstream.slug, kind=upstream.kind,
                      issuer=upstream.issuer or upstream.authorization_endpoint)
    except (UpstreamInputError, UpstreamError) as exc:
        print(f"yihao: {exc}", file=sys.stderr)
        return 1
    finally:
        core.close()
    out = {"slug": upstream.slug, "kind": upstream.kind, "issuer": upstream.issuer,
           "redirect_uri": core.settings.issuer + "/federation/callback"}
    if upstream.kind == OIDC:
        out["backchannel_logout_uri"] = f"{core.settings.issuer}/federation/{upstream.slug}/backchannel-logout"
    else:
        del out["issuer"]
    print(json.dumps(out) if args.json else "\n".join(f"{k}: {v}" for k, v in out.items()))
    return 0


def run_list(args: argparse.Namespace) -> int:
    _settings, core = open_core()
    try:
        rows = [{"slug": u.slug, "kind": u.kind, "name": u.name, "issuer": u.issuer,
                 "authorization_endpoint": u.authorization_endpoint, "userinfo_endpoint": u.userinfo_endpoint,
                 "claim_map": u.claim_map, "trusted_claims": sorted(u.trusted_claims),
                 "identity_level": u.identity_level, "may_create": u.may_create, "enabled": u.enabled}
                for u in core.federation.upstreams.all()]
    finally:
        core.close()
    print(json.dumps(rows, ensure_ascii=False) if args.json else
          "\n".join(f"{r['slug']}\t{r['kind']}\t{r['issuer'] or r['authorization_endpoint']}\t{r['name']}"
                    for r in rows))
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
