"""Logging in with an upstream provider: the button on the login page, the return, the link page.

Every failure is a page with a code in both languages (never a 500): the upstream refused, timed
out, or sent something that does not verify, or the sign-in expired.
"""
from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from federation import broker, linking
from federation.broker import UpstreamLogin
from federation.upstream import UpstreamError
from idp import events
from idp.accounts import may_sign_in
from idp.authn import acr
from idp.core import Core
from idp.crypto import b64u, digest, equal, random_token
from idp.endpoints.params import BadRequest, query_items
from idp.interaction.pages import duration, render
from idp.interaction.login import signed_in
from idp.interaction.web import browser_cookie, browser_record, outcome_response, page_locale, read_form
from idp.metrics import LOGINS
from idp.oauth.flow import error_page
from idp.store.ephemeral import put_json, take_json

EXPIRED = error_page("interaction_expired", "this sign-in has already been completed or has expired")
UNAVAILABLE = {"upstream_unavailable", "upstream_timeout"}


def _failure(request: Request, exc: UpstreamError) -> Response:
    events.record(events.UPSTREAM_LOGIN, outcome="failure", reason=exc.code)
    status = 502 if exc.code in UNAVAILABLE else 400
    return outcome_response(request, error_page(exc.code, exc.description, status), page_locale(request))


async def start(request: Request) -> Response:
    return await run_in_threadpool(_start, request)


def _start(request: Request) -> Response:
    core: Core = request.app.state.core
    uid = request.path_params["uid"]
    browser = request.cookies.get(browser_cookie(request))
    record = request.app.state.flow.load_interaction(uid, browser)
    if record is None or record["s"] != "login" or browser is None:
        return outcome_response(request, EXPIRED, page_locale(request))
    upstream = core.federation.upstreams.get(request.path_params["slug"])
    if upstream is None or not upstream.enabled:
        return outcome_response(request, error_page("upstream_unknown", "no such upstream provider", 404),
                                page_locale(request))
    try:
        url = broker.start(core, upstream, uid, browser)
    except UpstreamError as exc:
        return _failure(request, exc)
    return RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})


async def callback(request: Request) -> Response:
    try:
        params = dict(query_items(request))
    except BadRequest as exc:
        return outcome_response(request, error_page("invalid_request", exc.description), page_locale(request))
    return await run_in_threadpool(_callback, request, params)


def _callback(request: Request, params: dict[str, str]) -> Response:
    core: Core = request.app.state.core
    browser = request.cookies.get(browser_cookie(request))
    try:
        login = broker.finish(core, params, browser)
    except UpstreamError as exc:
        return _failure(request, exc)
    record = request.app.state.flow.load_interaction(login.uid, browser)
    if record is None:
        return outcome_response(request, EXPIRED, page_locale(request))
    claims = linking.asserted(login.upstream, login.claims)
    decision = linking.resolve(core, login.upstream, login.claims["sub"], claims)
    events.record(events.UPSTREAM_LOGIN, outcome="success" if decision.account_id else "pending",
                  subject=decision.account_id, client_id=record["c"], upstream=login.upstream.slug,
                  how=decision.how, untrusted_claims=list(claims.untrusted))
    if decision.account_id is None:
        return _confirm_page(request, _pending(core, login, claims, browser or ""), login.upstream.name)
    return _sign_in(request, login, record, decision.account_id)


def _sign_in(request: Request, login: UpstreamLogin, record: dict[str, Any], account_id: str) -> Response:
    """A session for the account (noted under the upstream's sid and sub for its logout), then the flow."""
    core: Core = request.app.state.core
    profile = core.accounts.get(account_id)
    if not may_sign_in(profile):
        return outcome_response(request, error_page("access_denied", "this account cannot sign in", 403),
                                page_locale(request))
    upstream, claims = login.upstream, login.claims
    # The strength of the upstream's login as its policy maps its acr; acr = min(identity level here, that)
    strength = acr.scheme(core.settings.acr_values).rank(upstream.acr_map.get(str(claims.get("acr")), "")) \
        or acr.ANY_LOGIN
    amr = broker.AMR + tuple(a for a in claims.get("amr", ()) if isinstance(a, str) and len(a) <= 16)[:4]
    return signed_in(request, login.uid, record, profile, amr, strength,
                     on_session=lambda session: broker.remember(core, login, session.sid))


# -- confirming a link by signing in locally ----------------------------------------------------
def _pending_key(token: str) -> str:
    return f"fed:pending:{digest(token)}"


def _pending(core: Core, login: UpstreamLogin, claims: linking.Asserted, browser: str) -> tuple[str, str]:
    """Park the validated login while the person signs in locally; only what the session needs is kept,
    and of a trusted ID number only its blind index (the local account must not hold another)."""
    token, csrf = random_token(24), random_token(24)
    kept = {k: login.claims[k] for k in ("sub", "sid", "acr", "amr") if k in login.claims}
    index = b64u(core.vault.blind_index(claims.id_number)) if claims.id_number is not None else None
    put_json(core.store, _pending_key(token), {"u": login.upstream.slug, "i": login.uid, "b": browser, "x": csrf,
                                               "c": kept, "t": login.id_token, "n": index},
             ttl=core.settings.interaction_ttl)
    return token, csrf


def _other_person(core: Core, account_id: str, index: str | None) -> bool:
    """True when the upstream vouched for an ID number and the local account is bound to another one."""
    held = core.identities.id_number(account_id) if index else None
    return held is not None and not equal(b64u(core.vault.blind_index(held)), str(index))


def _confirm_page(request: Request, pending: tuple[str, str], upstream_name: str, message: str | None = None,
                  username: str = "", status: int = 200, retry_after: int | None = None) -> Response:
    token, csrf = pending
    locale = page_locale(request)
    values = {"wait": duration(locale, retry_after)} if retry_after is not None else {}
    response = render(request, "link.html", {"token": token, "csrf_token": csrf, "upstream": upstream_name,
                                             "message": message, "message_values": values, "username": username},
                      locale=locale, status=status)
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


async def confirm(request: Request) -> Response:
    return await run_in_threadpool(_confirm, request, await read_form(request))


def _confirm(request: Request, form: dict[str, str] | None) -> Response:
    core: Core = request.app.state.core
    token = request.path_params["token"]
    key = _pending_key(token)
    record = browser_record(request, key, token)
    browser = request.cookies.get(browser_cookie(request))
    if record is None:
        return outcome_response(request, EXPIRED, page_locale(request))
    upstream = core.federation.upstreams.get(record["u"])
    if upstream is None:
        return outcome_response(request, EXPIRED, page_locale(request))
    if form is None or not equal(record["x"], form.get("csrf_token") or ""):
        return _confirm_page(request, (token, record["x"]), upstream.name, "login.csrf", status=403)
    username = form.get("username", "").strip()
    pending = (token, record["x"])
    keys = core.throttle.keys("login", account=username[:128])  # the same guessing budget as the login page
    verdict = core.throttle.check(keys)
    if verdict.allowed:
        profile = core.accounts.authenticate(username, form.get("password", ""))
        if profile is None:
            LOGINS.labels(outcome="failure").inc()
            events.record(events.LOGIN_FAILED, outcome="failure", reason="credentials", upstream=upstream.slug)
            verdict = core.throttle.failure(keys)
            if verdict.allowed:
                return _confirm_page(request, pending, upstream.name, "login.failed", username=username[:128])
    if not verdict.allowed:
        LOGINS.labels(outcome="locked").inc()
        return _confirm_page(request, pending, upstream.name, "login.locked", username=username[:128], status=429,
                             retry_after=verdict.retry_after)
    core.throttle.success(keys)
    if take_json(core.store, key) is None:  # single use
        return outcome_response(request, EXPIRED, page_locale(request))
    interaction = request.app.state.flow.load_interaction(record["i"], browser)
    if interaction is None:
        return outcome_response(request, EXPIRED, page_locale(request))
    if _other_person(core, profile.id, record.get("n")):
        events.record(events.UPSTREAM_LOGIN, outcome="failure", subject=profile.id, upstream=upstream.slug,
                      reason="identity_mismatch")
        return outcome_response(request, error_page("identity_mismatch", "the upstream vouched for another person "
                                                    "than this account's", 403), page_locale(request))
    try:
        core.federation.links.create(upstream.slug, record["c"]["sub"], profile.id, "login", actor=profile.id)
    except linking.LinkTaken:
        return outcome_response(request, error_page("link_taken", "this account is already linked to another "
                                                    f"{upstream.name} account"), page_locale(request))
    return _sign_in(request, UpstreamLogin(upstream, record["i"], record["c"], record["t"]), interaction, profile.id)
