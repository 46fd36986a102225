"""Back-Channel Logout 1.0 from an upstream: its logout token ends the local sessions it made.

The token is validated as §2.6 says — signature with the upstream's keys and an allowed algorithm,
iss, aud, iat, exp, the back-channel logout event, sub or sid, no nonce — and its `jti` is single
use on every worker. The answer is 200 on success and 400 with an OAuth-style error otherwise (§2.8).
"""
from __future__ import annotations

import time
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from federation import broker
from federation.upstream import OIDC, UpstreamConfig, UpstreamError, check_claims
from idp import events
from idp.backchannel import EVENT
from idp.core import Core
from idp.crypto import digest
from idp.endpoints.params import BadRequest, form_items, oauth_error
from idp.logout import propagate_logout

NO_STORE = {"Cache-Control": "no-store"}


async def backchannel_logout(request: Request) -> Response:
    try:
        form = dict(await form_items(request))
    except BadRequest as exc:
        return exc.response()
    core: Core = request.app.state.core
    upstream = core.federation.upstreams.get(request.path_params["slug"])
    if upstream is None or not upstream.enabled:
        return oauth_error("invalid_request", "no such upstream provider", 400, NO_STORE)
    if upstream.kind != OIDC:  # a plain OAuth 2 upstream signs no logout token we could check
        return oauth_error("invalid_request", "this upstream is not an OpenID provider", 400, NO_STORE)
    if not form.get("logout_token"):
        return oauth_error("invalid_request", "logout_token is required", 400, NO_STORE)
    try:
        ended = await run_in_threadpool(end_sessions, core, upstream, form["logout_token"])
    except UpstreamError as exc:
        events.record(events.UPSTREAM_LOGOUT, outcome="failure", upstream=upstream.slug, reason=exc.description)
        return oauth_error("invalid_request", exc.description, 400, NO_STORE)
    if ended:
        request.app.state.logout_worker.wake()
    return Response(status_code=200, headers=NO_STORE)


def validate_logout_token(core: Core, upstream: UpstreamConfig, token: str) -> dict[str, Any]:
    """Back-Channel Logout §2.6, every step; the jti is remembered until the token expires."""
    claims = core.federation.upstreams.verify(upstream, token)
    check_claims(claims, issuer=upstream.issuer, audience=upstream.client_id, require_sub=False)
    if not isinstance(claims.get("exp"), int) or claims["exp"] <= time.time():  # check_claims allows skew
        raise UpstreamError("upstream_invalid_token", "the logout token has expired")
    event = claims.get("events") if isinstance(claims.get("events"), dict) else {}
    if not isinstance(event.get(EVENT), dict):
        raise UpstreamError("upstream_invalid_token", "the logout token has no back-channel logout event")
    if "nonce" in claims:
        raise UpstreamError("upstream_invalid_token", "a logout token must not have a nonce")
    if not isinstance(claims.get("sid"), str) and not isinstance(claims.get("sub"), str):
        raise UpstreamError("upstream_invalid_token", "the logout token has neither sub nor sid")
    if not isinstance(claims.get("jti"), str) or not 0 < len(claims["jti"]) <= 255:
        raise UpstreamError("upstream_invalid_token", "the logout token has no jti")
    ttl = max(1, int(claims["exp"]) - int(time.time()) + 120)
    if not core.store.add(f"fed:jti:{digest(upstream.issuer + ' ' + claims['jti'])}", b"1", ttl=ttl):
        raise UpstreamError("upstream_invalid_token", "the logout token was already used")
    return claims


def end_sessions(core: Core, upstream: UpstreamConfig, token: str) -> int:
    """End every local session the upstream session (or subject) made; returns how many ended."""
    claims = validate_logout_token(core, upstream, token)
    ended = 0
    for sid in broker.sessions_of(core, upstream, claims.get("sub"), claims.get("sid")):
        session = core.sessions.end_sid(sid)
        if session is not None:
            propagate_logout(core, session.account_id, session.sid)
            ended += 1
    events.record(events.UPSTREAM_LOGOUT, upstream=upstream.slug, sessions_ended=ended)
    return ended
