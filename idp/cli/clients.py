"""`yihao clients create …`: register a relying party; the secret is printed once.
`yihao clients iat …`: an initial access token for dynamic registration (RFC 7591 §3)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from idp import events
from idp.cli.common import open_core
from idp.client_keys import ASYMMETRIC_ALGS, HMAC_ALGS, REQUEST_OBJECT_ALGS
from idp.clients import AUTH_METHODS, GRANT_TYPES, ID_TOKEN_ALGS, ClientInputError


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("clients", help="relying parties (OpenID Connect clients)")
    verbs = parser.add_subparsers(dest="clients_verb", required=True)
    create = verbs.add_parser("create", help="register a client")
    create.add_argument("--name", required=True)
    create.add_argument("--redirect-uri", action="append", default=[], dest="redirect_uris",
                        help="exact redirect URI (repeatable; required with the authorization_code grant)")
    create.add_argument("--grant-type", action="append", choices=GRANT_TYPES, dest="grant_types",
                        help="grant types the client may use (repeatable; default authorization_code)")
    create.add_argument("--resource", action="append", default=[], dest="resources",
                        help="an API (RFC 8707 resource URI) the client may ask tokens for (repeatable)")
    create.add_argument("--default-resource", help="the audience of its access tokens when it names none")
    create.add_argument("--access-token-alg", choices=ID_TOKEN_ALGS, help="access-token signature (default: the server's)")
    create.add_argument("--userinfo-alg", choices=ID_TOKEN_ALGS, help="sign userinfo responses (default: plain JSON)")
    create.add_argument("--session-refresh-tokens", action="store_true",
                        help="refresh tokens without offline_access, ending with the SSO session")
    create.add_argument("--dpop-bound-access-tokens", action="store_true",
                        help="refuse token requests without a DPoP proof (RFC 9449 §5.2)")
    create.add_argument("--post-logout-redirect-uri", action="append", default=[], dest="post_logout_redirect_uris")
    create.add_argument("--backchannel-logout-uri", help="where logout tokens are POSTed (Back-Channel Logout 1.0)")
    create.add_argument("--frontchannel-logout-uri",
                        help="loaded in an iframe at logout, with iss and sid (Front-Channel Logout 1.0)")
    create.add_argument("--public", action="store_true", help="no secret; PKCE required (native and browser apps)")
    create.add_argument("--first-party", action="store_true", help="trusted city app: no consent prompt")
    create.add_argument("--scope", help="scopes the client may ask for (default: openid profile email phone)")
    create.add_argument("--client-id", help="choose the client_id (default: random)")
    create.add_argument("--id-token-alg", choices=ID_TOKEN_ALGS, default="RS256", help="ID token signature (default RS256)")
    create.add_argument("--public-subject", action="store_true",
                        help="give this client the account id as `sub` (default: pairwise per sector)")
    create.add_argument("--release-id-number", action="store_true",
                        help="may receive the whole ID number in verified_claims, after the person consents")
    create.add_argument("--tls-client-auth-subject-dn", metavar="DN",
                        help="authenticate with a client certificate of this subject (RFC 4514) from a trusted CA, "
                             "through a mutual-TLS proxy (RFC 8705 tls_client_auth); no secret, tokens bound to it")
    create.add_argument("--minimum-acr", metavar="ACR",
                        help="the lowest acr (one of YIHAO_ACR_VALUES) this client accepts: a login for it "
                             "reaches it (second factor) or fails")
    create.add_argument("--auth-method", choices=AUTH_METHODS, dest="token_endpoint_auth_method",
                        help="token_endpoint_auth_method (default client_secret_basic; none with --public)")
    create.add_argument("--auth-signing-alg", choices=(*ASYMMETRIC_ALGS, *HMAC_ALGS),
                        help="the only alg accepted for its client assertions (token_endpoint_auth_signing_alg)")
    keys = create.add_mutually_exclusive_group()
    keys.add_argument("--jwks", help="the client's public keys: a JWK Set as JSON, or a file holding one")
    keys.add_argument("--jwks-uri", help="where the client publishes its public keys (https)")
    create.add_argument("--request-object-alg", choices=REQUEST_OBJECT_ALGS,
                        help="request objects must be signed with this alg (none: unsigned allowed)")
    create.add_argument("--request-uri", action="append", default=[], dest="request_uris",
                        help="a request_uri the client may pass by reference (repeatable)")
    create.add_argument("--require-par", action="store_true",
                        help="authorization requests must be pushed first (require_pushed_authorization_requests)")
    create.add_argument("--json", action="store_true", help="print client_id (and client_secret) as JSON")
    create.set_defaults(run=run_create)
    iat = verbs.add_parser("iat", help="issue an initial access token for dynamic client registration")
    iat.add_argument("--uses", type=int, default=1, help="registrations it allows (default 1: single use)")
    iat.add_argument("--ttl", type=int, default=86400, help="seconds until it expires (default 86400)")
    iat.add_argument("--public-subject", action="store_true",
                     help="clients registered with it may ask for subject_type public (default: pairwise only)")
    iat.add_argument("--json", action="store_true", help="print the token and its expiry as JSON")
    iat.set_defaults(run=run_iat)


def _jwks(value: str | None) -> Any:
    """--jwks: inline JSON, or the name of a file holding it."""
    if value is None:
        return None
    try:
        text = value if value.lstrip().startswith("{") else Path(value).read_text(encoding="utf-8")
        return json.loads(text)
    except OSError as exc:
        raise ClientInputError(f"jwks: cannot read {value}: {exc.strerror}") from None
    except ValueError:
        raise ClientInputError("jwks is not valid JSON") from None


def run_create(args: argparse.Namespace) -> int:
    _settings, core = open_core()
    try:
        if args.minimum_acr is not None and args.minimum_acr not in core.settings.acr_values:
            raise ClientInputError(f"--minimum-acr must be one of {' '.join(core.settings.acr_values)}")
        client, secret = core.clients.create(
            name=args.name, redirect_uris=args.redirect_uris, public=args.public, first_party=args.first_party,
            post_logout_redirect_uris=args.post_logout_redirect_uris, scope=args.scope, client_id=args.client_id,
            id_token_signed_response_alg=args.id_token_alg, subject_type="public" if args.public_subject else "pairwise",
            backchannel_logout_uri=args.backchannel_logout_uri, backchannel_logout_session_required=True,
            frontchannel_logout_uri=args.frontchannel_logout_uri, frontchannel_logout_session_required=True,
            grant_types=args.grant_types, resources=args.resources, default_resource=args.default_resource,
            access_token_signed_response_alg=args.access_token_alg, userinfo_signed_response_alg=args.userinfo_alg,
            session_refresh_tokens=args.session_refresh_tokens, release_id_number=args.release_id_number,
            token_endpoint_auth_method=args.token_endpoint_auth_method, jwks=_jwks(args.jwks),
            jwks_uri=args.jwks_uri, token_endpoint_auth_signing_alg=args.auth_signing_alg,
            request_object_signing_alg=args.request_object_alg, request_uris=args.request_uris,
            require_pushed_authorization_requests=args.require_par,
            dpop_bound_access_tokens=args.dpop_bound_access_tokens,
            tls_client_auth_subject_dn=args.tls_client_auth_subject_dn, minimum_acr=args.minimum_acr)
        events.record(events.CLIENT_CREATED, actor="cli", client_id=client.client_id)
    except ClientInputError as exc:
        print(f"yihao: {exc}", file=sys.stderr)
        return 1
    finally:
        core.close()
    out = {"client_id": client.client_id} | ({"client_secret": secret} if secret else {})
    if args.json:
        print(json.dumps(out))
    else:
        print("\n".join(f"{k}: {v}" for k, v in out.items()))
        if secret:
            print("(the secret is shown only this once)")
    return 0


def run_iat(args: argparse.Namespace) -> int:
    from idp.registration import iat

    if args.uses < 1 or args.ttl < 1:
        print("yihao: --uses and --ttl must be at least 1", file=sys.stderr)
        return 1
    _settings, core = open_core()
    try:
        token, expires_at = iat.issue(core.engine, uses=args.uses, ttl=args.ttl,
                                      allow_public_subject=args.public_subject)
        events.record(events.INITIAL_ACCESS_TOKEN_ISSUED, actor="cli", uses=args.uses, ttl=args.ttl,
                      public_subject=args.public_subject)
    finally:
        core.close()
    out = {"initial_access_token": token, "expires_at": expires_at.isoformat(timespec="seconds"), "uses": args.uses}
    if args.json:
        print(json.dumps(out))
    else:
        print("\n".join(f"{k}: {v}" for k, v in out.items()))
        print("(the token is shown only this once; send it as Authorization: Bearer to the registration endpoint)")
    return 0
