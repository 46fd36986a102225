"""The account page where a signed-in person raises an L1 account to L2 (name + ID number matched
in the population registry). The form's CSRF token is bound to the SSO session: a keyed digest
of the session cookie, so it needs no state and dies with the session."""
from __future__ import annotations

import hashlib
import hmac

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from idp.crypto import b64u, equal
from idp.interaction.login import read_form
from idp.interaction.pages import render
from idp.interaction.signup import MAX_NAME, OUTCOMES, Invalid, parse_identity
from idp.interaction.web import page_locale
from idp.sessions import SsoSession
from realname.verification import VERIFIED


def _csrf(request: Request, handle: str) -> str:
    key = request.app.state.core.master.derive("account-page-csrf")
    return b64u(hmac.new(key, handle.encode(), hashlib.sha256).digest())


def _page(request: Request, handle: str | None, message: str | None = None, status: int = 200,
          name: str = "", detail: str | None = None) -> Response:
    context = {"csrf_token": _csrf(request, handle) if handle else "", "message": message, "detail": detail,
               "name": name, "upgrade": True, "action": "/account/verify", "signed_in": handle is not None}
    return render(request, "account_verify.html", context, locale=page_locale(request), status=status)


def _session(request: Request) -> tuple[str | None, SsoSession | None]:
    """The SSO session's cookie handle and the session, when the browser has a live one."""
    core = request.app.state.core
    handle = request.cookies.get(core.sessions.cookie)
    session = core.sessions.load(handle)
    return (handle, session) if session is not None else (None, None)


async def show(request: Request) -> Response:
    return await run_in_threadpool(_show, request)


def _show(request: Request) -> Response:
    handle, session = _session(request)
    if session is None:
        return _page(request, None, "account.signin_first", 401)
    profile = request.app.state.core.accounts.get(session.account_id)
    if profile is not None and profile.assurance_level >= VERIFIED:
        return _done(request, profile.assurance_level)
    return _page(request, handle, name=profile.name or "" if profile else "")


async def submit(request: Request) -> Response:
    return await run_in_threadpool(_submit, request, await read_form(request))


def _submit(request: Request, form: dict[str, str] | None) -> Response:
    handle, session = _session(request)
    if session is None or handle is None:
        return _page(request, None, "account.signin_first", 401)
    if form is None or not equal(_csrf(request, handle), form.get("csrf_token") or ""):
        return _page(request, handle, "login.csrf", 403)
    identity = parse_identity(form, page_locale(request))
    if isinstance(identity, Invalid):
        return _page(request, handle, identity.message, 400, form.get("name", "")[:MAX_NAME], identity.detail)
    name, id_number = identity
    core = request.app.state.core
    result = core.verification.upgrade(session.account_id, name=name, id_number=id_number,
                                       address=request.client.host if request.client else None)
    if result.status in ("verified", "already_verified"):
        return _done(request, result.profile.assurance_level if result.profile else VERIFIED)
    return _page(request, handle, f"signup.{result.status}", OUTCOMES[result.status], name)


def _done(request: Request, level: int) -> Response:
    return render(request, "account_verify.html", {"verified": True, "level": f"L{level}"},
                  locale=page_locale(request))
