"""RP-Initiated Logout 1.0 at the end_session_endpoint, with Front-Channel Logout 1.0 on the last page.

A valid `id_token_hint` for the person signed in here logs out at once; otherwise the person confirms
on a CSRF-protected page, so a third-party page cannot sign anyone out. `post_logout_redirect_uri`
is used only when it exactly matches one the client registered; an unregistered one is an error
page, never a redirect.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from authlib.common.urls import add_params_to_uri
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from federation import broker
from idp.clients import RegisteredClient
from idp.core import Core
from idp.crypto import equal, random_token
from idp.endpoints.params import BadRequest, form_items, query_items
from idp.interaction.pages import render
from idp.interaction.web import (browser_cookie, browser_id, browser_record, clear_session_cookie, origin,
                                page_locale, read_form, set_cookie)
from idp.logout import propagate_logout
from idp.store.ephemeral import put_json, take_json
from idp.tokens import audience

SINGLE = ("id_token_hint", "client_id", "post_logout_redirect_uri", "state", "ui_locales", "logout_hint")


class LogoutError(Exception):
    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error, self.description = error, description


@dataclass(frozen=True)
class LogoutRequest:
    client: RegisteredClient | None
    redirect: str | None  # a registered post_logout_redirect_uri
    state: str | None
    hint_sub: str | None  # `sub` of a valid id_token_hint
    hint_sid: str | None  # its `sid`: the session it was issued in
    ui_locales: str | None


def _hint(core: Core, token: str) -> tuple[str, str, str | None] | None:
    """(client_id, sub, sid) of an ID token this provider issued; an expired one is still a hint (§2)."""
    claims = core.issuer.read_id_token(token)
    if claims is None:
        return None
    audiences = audience(claims)
    client_id = claims.get("azp") if len(audiences) > 1 else audiences[0]
    if not isinstance(client_id, str) or client_id not in audiences:
        return None
    sid = claims.get("sid")
    return client_id, str(claims.get("sub")), sid if isinstance(sid, str) else None


def parse(core: Core, items: list[tuple[str, str]]) -> LogoutRequest:
    """Validate the logout request (RP-Initiated Logout §2, §3); raises LogoutError."""
    repeated = [k for k in SINGLE if sum(1 for key, _ in items if key == k) > 1]
    if repeated:
        raise LogoutError("invalid_request", f"parameter {repeated[0]} is repeated")
    params = dict(items)
    if len(params.get("state", "")) > 2048 or len(params.get("post_logout_redirect_uri", "")) > 2048:
        raise LogoutError("invalid_request", "state or post_logout_redirect_uri is too long")
    hint = _hint(core, params["id_token_hint"]) if params.get("id_token_hint") else None
    client_id = params.get("client_id") or (hint[0] if hint else None)
    if hint and client_id != hint[0]:
        raise LogoutError("invalid_request", "client_id does not match the audience of id_token_hint")
    client = core.clients.get(client_id) if client_id else None
    if client_id and client is None:
        raise LogoutError("invalid_client", "client_id is not registered")
    redirect = params.get("post_logout_redirect_uri")
    if redirect is not None:
        if client is None:
            raise LogoutError("invalid_request", "post_logout_redirect_uri needs a valid id_token_hint or client_id")
        if redirect not in client.post_logout_redirect_uris:  # exact string match, as for redirect_uri
            raise LogoutError("invalid_request", "post_logout_redirect_uri is not registered for this client")
    return LogoutRequest(client, redirect, params.get("state"), hint[1] if hint else None, hint[2] if hint else None,
                         params.get("ui_locales"))


async def end_session(request: Request) -> Response:
    try:
        items = await form_items(request) if request.method == "POST" else query_items(request)
    except BadRequest as exc:
        return _error(request, "invalid_request", exc.description, page_locale(request))
    return await run_in_threadpool(_end_session, request, items)


def _end_session(request: Request, items: list[tuple[str, str]]) -> Response:
    core: Core = request.app.state.core
    try:
        req = parse(core, items)
    except LogoutError as exc:
        return _error(request, exc.error, exc.description, page_locale(request, dict(items).get("ui_locales")))
    handle = request.cookies.get(core.sessions.cookie)
    if request.method == "POST" and handle is None and browser_cookie(request) not in request.cookies:
        # A cross-site form POST carries no SameSite=Lax cookie; a top-level GET does.
        return RedirectResponse("/logout?" + urlencode(items), status_code=303, headers={"Cache-Control": "no-store"})
    session = core.sessions.load(handle)
    if session is None:  # nothing to end here
        return _finish(request, req.client, req.redirect, req.state, [], page_locale(request, req.ui_locales))
    # RP-Initiated Logout §2: at once only for an ID token of this very session; one from an earlier
    # session (a token leaked into a log, say) would otherwise sign the person out from any site
    if (req.client is not None and req.hint_sid == session.sid
            and req.hint_sub == core.issuer.subject(req.client, session.account_id)):
        return _log_out(request, req.client, req.redirect, req.state, req.ui_locales)
    return _ask(request, req)


def _ask(request: Request, req: LogoutRequest) -> Response:
    """The confirmation page, bound to this browser, its single-use record in the store."""
    core: Core = request.app.state.core
    browser, fresh = browser_id(request)
    uid = random_token(16)
    record = {"b": browser, "x": random_token(24), "c": req.client.client_id if req.client else None,
              "r": req.redirect, "s": req.state, "l": req.ui_locales}
    put_json(core.store, f"logout:{uid}", record, ttl=core.settings.interaction_ttl)
    response = _confirm_page(request, uid, record)
    if fresh:
        set_cookie(request, response, browser_cookie(request), browser, max_age=10 * 365 * 86400)
    return response


def _confirm_page(request: Request, uid: str, record: dict[str, Any], message: str | None = None,
                  status: int = 200) -> Response:
    core: Core = request.app.state.core
    client = core.clients.get(record["c"]) if record["c"] else None
    context = {"uid": uid, "csrf_token": record["x"], "client_name": client.name if client else None,
               "message": message}
    target = origin(record["r"]) if record["r"] else None  # the redirect after the form, allowed by CSP
    return render(request, "logout.html", context, locale=page_locale(request, record["l"]), status=status,
                  form_action=target)


async def confirm(request: Request) -> Response:
    return await run_in_threadpool(_confirm, request, await read_form(request))


def _confirm(request: Request, form: dict[str, str] | None) -> Response:
    core: Core = request.app.state.core
    uid = request.path_params["uid"]
    key = f"logout:{uid}"
    record = browser_record(request, key, uid)
    if record is None:
        return _error(request, "logout_expired", "this sign-out request has expired", page_locale(request), 400)
    if form is None or not equal(record["x"], form.get("csrf_token") or ""):
        return _confirm_page(request, uid, record, "login.csrf", status=403)
    if form.get("action") not in ("logout", "stay"):
        return _confirm_page(request, uid, record)
    if take_json(core.store, key) is None:  # single use: a second submission finds nothing
        return _error(request, "logout_expired", "this sign-out request has expired", page_locale(request), 400)
    client = core.clients.get(record["c"]) if record["c"] else None
    if form["action"] == "stay":
        return _finish(request, client, record["r"], record["s"], [], page_locale(request, record["l"]), stayed=True)
    return _log_out(request, client, record["r"], record["s"], record["l"])


def _log_out(request: Request, client: RegisteredClient | None, redirect: str | None, state: str | None,
             ui_locales: str | None) -> Response:
    core: Core = request.app.state.core
    session = core.sessions.end(request.cookies.get(core.sessions.cookie))
    participants = propagate_logout(core, session.account_id, session.sid) if session else []
    if session is not None:
        request.app.state.logout_worker.wake()
    frames = [_frame(core, c, session.sid) for c in participants if c.frontchannel_logout_uri] if session else []
    then = add_params_to_uri(redirect, [("state", state)]) if redirect and state else redirect
    upstream = broker.upstream_logout(core, session.sid, then) if session else None
    if upstream is not None:  # the upstream session this one came from ends too, then the person goes on
        redirect, state = upstream, None
    response = _finish(request, client, redirect, state, frames, page_locale(request, ui_locales))
    clear_session_cookie(request, response)
    return response


def _frame(core: Core, client: RegisteredClient, sid: str) -> str:
    """Front-Channel Logout §2: the RP's logout URI, with iss and sid when it asked for them."""
    assert client.frontchannel_logout_uri is not None
    if not client.frontchannel_logout_session_required:
        return client.frontchannel_logout_uri
    return add_params_to_uri(client.frontchannel_logout_uri, [("iss", core.settings.issuer), ("sid", sid)])


def _finish(request: Request, client: RegisteredClient | None, redirect: str | None, state: str | None,
            frames: list[str], locale: str, stayed: bool = False) -> Response:
    """Back to the relying party (with `state`), or the signed-out page; iframes first if any."""
    target = add_params_to_uri(redirect, [("state", state)]) if redirect and state else redirect
    if target and not frames:
        return RedirectResponse(target, status_code=303, headers={"Cache-Control": "no-store"})
    context = {"frames": frames, "continue_url": target, "stayed": stayed,
               "client_name": client.name if client else None}
    return render(request, "logged_out.html", context, locale=locale,
                  frame_src=tuple(dict.fromkeys(origin(f) for f in frames)))


def _error(request: Request, error: str, description: str, locale: str, status: int = 400) -> Response:
    return render(request, "error.html", {"error": error, "error_description": description}, locale=locale,
                  status=status)


async def upstream_logged_out(request: Request) -> Response:
    """Back from the upstream's end_session endpoint: on to where the logout was going, or the signed-out page."""
    core: Core = request.app.state.core
    known, then = await run_in_threadpool(broker.after_upstream_logout, core, request.query_params.get("state", ""))
    if not known:
        return _error(request, "logout_expired", "this sign-out request has expired", page_locale(request))
    return _finish(request, None, then, None, [], page_locale(request))
