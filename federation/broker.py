"""Logging in through an upstream provider: the code flow with PKCE, `state` and `nonce`, synchronous.

`state`, `nonce` and the PKCE verifier live in the ephemeral store under the state's digest, bound
to the browser that started the flow and to its interaction, and are taken (single use) when the
upstream sends the browser back. An OpenID Connect upstream's ID token is validated fully before
anything is believed; a plain OAuth 2 upstream (no ID token, so no `nonce`) is asked who the person
is at its userinfo endpoint with the access token (federation.oauth2). The session this login makes
is remembered under the upstream's `sid` and `sub` so the upstream's back-channel logout can end it.
"""
from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from typing import Any

from authlib.common.urls import add_params_to_uri
from authlib.common.errors import AuthlibBaseError

from federation import oauth2
from federation.linking import ID_NUMBER
from federation.upstream import OAUTH2, OIDC, UpstreamConfig, UpstreamError
from idp.core import Core
from idp.crypto import digest, equal, random_token
from idp.store.ephemeral import get_json, put_json, take_json
from idp.verified_claims import ID_NUMBER as VERIFIED_ID_NUMBER

with warnings.catch_warnings():  # authlib nudges towards the httpx2 fork; httpx is what we ship
    warnings.simplefilter("ignore")
    from authlib.integrations.httpx_client import OAuth2Client

CALLBACK = "/federation/callback"
AMR = ("fed",)  # this login was vouched for by another provider
# What an upstream trusted for the ID number is asked for (OIDC Core §5.5, OpenID Connect for Identity
# Assurance §6): the verified number and name in the ID token. A Yihao upstream releases the whole
# number only to a client its administrator allowed, after the person consented there; otherwise it
# omits it, and nothing is linked by it.
CLAIMS_REQUEST = json.dumps({"id_token": {"verified_claims": {
    "verification": {"trust_framework": None, "assurance_level": None},
    "claims": {VERIFIED_ID_NUMBER: None, "name": None}}}}, separators=(",", ":"))


@dataclass(frozen=True)
class UpstreamLogin:
    """A validated upstream login: who the upstream says it is, for which interaction."""

    upstream: UpstreamConfig
    uid: str
    claims: dict[str, Any]
    id_token: str | None  # None from a plain OAuth 2 upstream (its claims are its mapped userinfo answer)


def state_key(state: str) -> str:
    return f"fed:state:{digest(state)}"


def start(core: Core, upstream: UpstreamConfig, uid: str, browser: str) -> str:
    """The upstream's authorization URL for this interaction; what the return needs is stored."""
    authorization_endpoint, _ = core.federation.upstreams.endpoints(upstream)
    state, nonce, verifier = random_token(24), random_token(24), random_token(48)
    put_json(core.store, state_key(state), {"u": upstream.slug, "i": uid, "b": browser, "n": nonce, "v": verifier},
             ttl=core.settings.interaction_ttl)
    extra: dict[str, str] = {}
    if upstream.kind == OIDC:
        extra["nonce"] = nonce
        if upstream.trusted_for(ID_NUMBER):
            extra["claims"] = CLAIMS_REQUEST
    with _client(core, upstream) as client:
        url, _ = client.create_authorization_url(authorization_endpoint, state=state, code_verifier=verifier, **extra)
    return url


def _client(core: Core, upstream: UpstreamConfig) -> OAuth2Client:
    method = upstream.token_auth if upstream.client_secret else "none"
    return OAuth2Client(upstream.client_id, upstream.client_secret, scope=upstream.scope,
                        redirect_uri=core.settings.issuer + CALLBACK, token_endpoint_auth_method=method,
                        code_challenge_method="S256", timeout=core.federation.timeout)


def finish(core: Core, params: dict[str, str], browser: str | None) -> UpstreamLogin:
    """Validate the upstream's answer and the ID token it leads to; UpstreamError on anything wrong."""
    state = params.get("state", "")
    saved = take_json(core.store, state_key(state)) if 0 < len(state) <= 128 else None
    if not isinstance(saved, dict) or not browser or not equal(saved["b"], browser):
        raise UpstreamError("upstream_state", "the state is unknown, used, expired or from another browser")
    upstream = core.federation.upstreams.get(saved["u"])
    if upstream is None or not upstream.enabled:
        raise UpstreamError("upstream_unknown", "the upstream is no longer configured")
    # RFC 9207: mix-up defence (a plain OAuth 2 upstream has no issuer identifier we could compare)
    if "iss" in params and upstream.kind == OIDC and params["iss"] != upstream.issuer:
        raise UpstreamError("upstream_invalid_response", "iss in the response is not the upstream's")
    if params.get("error"):
        code = "upstream_denied" if params["error"] == "access_denied" else "upstream_error"
        raise UpstreamError(code, f"the upstream answered {params['error'][:64]}")
    if not params.get("code"):
        raise UpstreamError("upstream_invalid_response", "the upstream sent neither a code nor an error")
    _, token_endpoint = core.federation.upstreams.endpoints(upstream)
    try:
        with _client(core, upstream) as client:
            token = client.fetch_token(token_endpoint, code=params["code"], code_verifier=saved["v"],
                                       grant_type="authorization_code")
    except AuthlibBaseError as exc:  # the token endpoint answered an OAuth error (RFC 6749 §5.2)
        raise UpstreamError("upstream_error", f"the token request was refused: {str(exc.error)[:64]}") from None
    except UpstreamError:
        raise
    except Exception as exc:  # httpx timeouts and transport errors, a non-JSON body
        code = "upstream_timeout" if "Timeout" in type(exc).__name__ else "upstream_unavailable"
        raise UpstreamError(code, f"the token request failed: {type(exc).__name__}") from None
    if upstream.kind == OAUTH2:
        return UpstreamLogin(upstream, saved["i"], oauth2.userinfo(core.federation.upstreams.http, upstream, token),
                             None)
    id_token = token.get("id_token")
    if not isinstance(id_token, str):
        raise UpstreamError("upstream_invalid_token", "the token response has no ID token")
    claims = core.federation.upstreams.validate_id_token(upstream, id_token, saved["n"])
    return UpstreamLogin(upstream, saved["i"], claims, id_token)


# -- the sessions an upstream login made, for its back-channel logout ---------------------------
def _by_sid(slug: str, upstream_sid: str) -> str:
    return f"fed:sid:{slug}:{digest(upstream_sid)}"


def _by_sub(slug: str, subject: str) -> str:
    return f"fed:sub:{slug}:{digest(subject)}"


def origin_key(local_sid: str) -> str:
    return f"fed:origin:{local_sid}"


def remember(core: Core, login: UpstreamLogin, local_sid: str) -> None:
    """Note that the local session `local_sid` came from this upstream login."""
    ttl = core.settings.session_max_ttl
    slug, claims = login.upstream.slug, login.claims
    if isinstance(claims.get("sid"), str):
        core.store.sadd(_by_sid(slug, claims["sid"]), local_sid, ttl=ttl)
    core.store.sadd(_by_sub(slug, claims["sub"]), local_sid, ttl=ttl)
    put_json(core.store, origin_key(local_sid), {"u": slug, "t": login.id_token}, ttl=ttl)


def sessions_of(core: Core, upstream: UpstreamConfig, subject: str | None, upstream_sid: str | None) -> set[str]:
    """The local sessions made from the upstream session `upstream_sid`, or from any of `subject`'s."""
    if upstream_sid:
        return core.store.smembers(_by_sid(upstream.slug, upstream_sid))
    return core.store.smembers(_by_sub(upstream.slug, subject)) if subject else set()


def origin(core: Core, local_sid: str) -> dict[str, str] | None:
    record = get_json(core.store, origin_key(local_sid))
    return record if isinstance(record, dict) else None


# -- RP-Initiated Logout at the upstream, when its policy asks for it ---------------------------
LOGGED_OUT = "/federation/logged-out"


def upstream_logout(core: Core, local_sid: str, then: str | None) -> str | None:
    """The upstream's end_session URL for the session `local_sid` came from, if its policy says local
    logout ends the upstream session too; `then` (where the person goes afterwards) is kept under a
    single-use state until the upstream sends the browser back to LOGGED_OUT."""
    record = take_json(core.store, origin_key(local_sid))
    upstream = core.federation.upstreams.get(record["u"]) if isinstance(record, dict) else None
    if upstream is None or not upstream.end_session or upstream.kind != OIDC:
        return None
    try:
        endpoint = core.federation.upstreams.metadata(upstream).get("end_session_endpoint")
    except UpstreamError:
        return None  # the upstream is down: the local logout stands on its own
    if not isinstance(endpoint, str):
        return None
    state = random_token(24)
    put_json(core.store, f"fed:rplo:{digest(state)}", {"r": then}, ttl=core.settings.interaction_ttl)
    return add_params_to_uri(endpoint, [("id_token_hint", record["t"]), ("client_id", upstream.client_id),
                                        ("post_logout_redirect_uri", core.settings.issuer + LOGGED_OUT),
                                        ("state", state)])


def after_upstream_logout(core: Core, state: str) -> tuple[bool, str | None]:
    """(known, where to go next) for the upstream's return to LOGGED_OUT."""
    record = take_json(core.store, f"fed:rplo:{digest(state)}") if 0 < len(state) <= 128 else None
    return isinstance(record, dict), record.get("r") if isinstance(record, dict) else None
