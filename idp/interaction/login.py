"""The login and consent steps of an interaction: pages for people, CSRF-protected forms."""
from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from idp import events
from idp.endpoints.params import BadRequest, form_items
from idp.interaction.pages import render
from idp.interaction.web import browser_cookie, outcome_response, page_locale
from idp.metrics import LOGINS
from idp.oauth.flow import Outcome, error_page
from idp.tokens import Authentication

EXPIRED = error_page("interaction_expired", "this sign-in has already been completed or has expired")
PASSWORD_AMR = ("pwd",)
PASSWORD_ACR = "loa/1"


def _record(request: Request) -> tuple[str, dict[str, Any] | None]:
    uid = request.path_params["uid"]
    return uid, request.app.state.flow.load_interaction(uid, request.cookies.get(browser_cookie(request)))


def _locale(request: Request, record: dict[str, Any]) -> str:
    return page_locale(request, dict(record["p"]).get("ui_locales"))


def _page(request: Request, uid: str, record: dict[str, Any], message: str | None = None, username: str = "",
          status: int = 200) -> Response:
    client = request.app.state.core.clients.get(record["c"])
    params = dict(record["p"])
    context = {"uid": uid, "csrf_token": record["x"], "client_name": client.name if client else record["c"],
               "message": message, "username": username or params.get("login_hint", "")[:128]}
    if record["s"] == "consent":
        scope = client.get_allowed_scope(params.get("scope")) if client else ""
        context["scopes"] = [s for s in scope.split() if s != "openid"] or ["openid"]
        return render(request, "consent.html", context, locale=_locale(request, record), status=status)
    return render(request, "login.html", context, locale=_locale(request, record), status=status)


async def show(request: Request) -> Response:
    uid, record = await run_in_threadpool(_record, request)
    if record is None:
        return outcome_response(request, EXPIRED, page_locale(request))
    return _page(request, uid, record)


async def _form(request: Request) -> dict[str, str] | None:
    try:
        return dict(await form_items(request))
    except BadRequest:
        return None


async def login(request: Request) -> Response:
    form = await _form(request)
    app = request.app.state
    uid, record = await run_in_threadpool(_record, request)
    if record is None:
        return outcome_response(request, EXPIRED, page_locale(request))
    if form is None or not app.flow.check_csrf(record, form.get("csrf_token")):
        return _page(request, uid, record, "login.csrf", status=403)
    if record["s"] != "login":
        return _page(request, uid, record)
    username, password = form.get("username", "").strip(), form.get("password", "")
    old_handle = request.cookies.get(app.core.sessions.cookie)

    def authenticate() -> Outcome | None:
        profile = app.core.accounts.authenticate(username, password)
        if profile is None:
            LOGINS.labels(outcome="failure").inc()
            events.record(events.LOGIN_FAILED, outcome="failure", client_id=record["c"], reason="credentials")
            return None
        app.core.sessions.end(old_handle)  # a login never keeps the previous session (no fixation)
        handle, session = app.core.sessions.create(profile.id, PASSWORD_AMR, PASSWORD_ACR)
        LOGINS.labels(outcome="success").inc()
        events.record(events.LOGIN_SUCCEEDED, subject=profile.id, client_id=record["c"], amr=list(PASSWORD_AMR))
        auth = Authentication(account_id=profile.id, auth_time=session.auth_time, amr=session.amr,
                              acr=session.acr, sid=session.sid)
        outcome = app.flow.after_login(uid, record, auth)
        outcome.set_session = handle
        return outcome

    outcome = await run_in_threadpool(authenticate)
    if outcome is None:
        return _page(request, uid, record, "login.failed", username=username[:128])
    return outcome_response(request, outcome, _locale(request, record))


async def consent(request: Request) -> Response:
    form = await _form(request)
    app = request.app.state
    uid, record = await run_in_threadpool(_record, request)
    if record is None:
        return outcome_response(request, EXPIRED, page_locale(request))
    if form is None or not app.flow.check_csrf(record, form.get("csrf_token")):
        return _page(request, uid, record, "login.csrf", status=403)
    if record["s"] != "consent" or form.get("action") not in ("approve", "deny"):
        return _page(request, uid, record)
    outcome = await run_in_threadpool(app.flow.consent, uid, record, form["action"] == "approve")
    return outcome_response(request, outcome, _locale(request, record))
