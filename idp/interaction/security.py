"""The account security page: a signed-in person enrols and removes TOTP and passkeys.

Signing in for it goes through the same interaction pages as any login. While the account has a
second factor, changing its factors needs a session that used one (a stolen password alone
cannot add an attacker's authenticator or remove the owner's). Every form carries a CSRF token
derived from the session handle.
"""
from __future__ import annotations

import hashlib
import hmac
from typing import Any

import segno
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from idp.authn.stepup import PASSWORD
from idp.crypto import b64u, digest, equal
from idp.endpoints.params import BadRequest, form_items
from idp.interaction.pages import render
from idp.interaction.web import browser_id, outcome_response, page_locale
from idp.sessions import SsoSession

PAGE = "/account/security"


def _csrf(request: Request, handle: str) -> str:
    key = request.app.state.core.master.derive("account-csrf")
    return b64u(hmac.new(key, digest(handle).encode(), hashlib.sha256).digest())


def _signed_in(request: Request) -> tuple[str, SsoSession] | Response:
    """The session behind the cookie, with a second factor if the account has one; else the sign-in."""
    core, flow = request.app.state.core, request.app.state.flow
    handle = request.cookies.get(core.sessions.cookie) or ""
    session = core.sessions.load(handle)
    browser, fresh = browser_id(request)
    if session is None or core.accounts.get(session.account_id) is None:
        outcome = flow.account_interaction(browser, PAGE)
    elif "mfa" not in session.amr and core.factors.available(session.account_id) > PASSWORD:
        outcome = flow.account_interaction(browser, PAGE, session)
    else:
        return handle, session
    return outcome_response(request, outcome, page_locale(request), new_browser=browser if fresh else None)


def _page(request: Request, handle: str, session: SsoSession, status: int = 200, **extra: Any) -> Response:
    core = request.app.state.core
    account_id = session.account_id
    context = {"csrf_token": _csrf(request, handle), "totp": core.factors.totp.enrolled(account_id),
               "recovery_left": core.factors.totp.recovery_codes_left(account_id),
               "passkeys": core.factors.passkeys.list(account_id), "passkeys_usable": core.factors.passkeys.usable,
               "message": None, **extra}
    return render(request, "account_security.html", context, locale=page_locale(request), status=status)


async def show(request: Request) -> Response:
    return await run_in_threadpool(_show, request)


def _show(request: Request) -> Response:
    signed_in = _signed_in(request)
    if isinstance(signed_in, Response):
        return signed_in
    return _page(request, *signed_in)


async def change(request: Request) -> Response:
    try:
        form: dict[str, str] | None = dict(await form_items(request))
    except BadRequest:
        form = None
    return await run_in_threadpool(_change, request, form)


def _change(request: Request, form: dict[str, str] | None) -> Response:
    signed_in = _signed_in(request)
    if isinstance(signed_in, Response):
        return signed_in
    handle, session = signed_in
    if form is None or not equal(form.get("csrf_token", ""), _csrf(request, handle)):
        return _page(request, handle, session, 403, message="login.csrf")
    action = ACTIONS.get(form.get("action", ""))
    if action is None:
        return RedirectResponse(PAGE, status_code=303)
    return action(request, handle, session, form)


def _totp_begin(request: Request, handle: str, session: SsoSession, form: dict[str, str]) -> Response:
    core = request.app.state.core
    profile = core.accounts.get(session.account_id)
    enrolment = core.factors.totp.begin(session.account_id, profile.username if profile else session.account_id)
    return _enrolment_page(request, handle, session, enrolment)


def _enrolment_page(request: Request, handle: str, session: SsoSession, enrolment: Any, status: int = 200,
                    message: str | None = None) -> Response:
    qr = segno.make(enrolment.uri, error="m").svg_inline(scale=4, title="TOTP")
    return _page(request, handle, session, status, enrolment={"secret": enrolment.secret, "qr": qr}, message=message)


def _totp_confirm(request: Request, handle: str, session: SsoSession, form: dict[str, str]) -> Response:
    core = request.app.state.core
    codes = core.factors.totp.confirm(session.account_id, form.get("code", "")[:32])
    if codes is not None:
        return _page(request, handle, session, recovery_codes=codes, message="account.totp_enrolled")
    profile = core.accounts.get(session.account_id)
    pending = core.factors.totp.pending(session.account_id, profile.username if profile else session.account_id)
    if pending is None:
        return _page(request, handle, session, 400, message="account.enrolment_expired")
    return _enrolment_page(request, handle, session, pending, 400, "account.code_wrong")


def _totp_remove(request: Request, handle: str, session: SsoSession, form: dict[str, str]) -> Response:
    request.app.state.core.factors.totp.remove(session.account_id)
    return _page(request, handle, session, message="account.totp_removed")


def _passkey_begin(request: Request, handle: str, session: SsoSession, form: dict[str, str]) -> Response:
    core = request.app.state.core
    profile = core.accounts.get(session.account_id)
    username = profile.username if profile else session.account_id
    ceremony = core.factors.passkeys.registration(session.account_id, username, profile.name if profile else None)
    return _page(request, handle, session, ceremony={"id": ceremony.id, "options": ceremony.options})


def _passkey_register(request: Request, handle: str, session: SsoSession, form: dict[str, str]) -> Response:
    ok = request.app.state.core.factors.passkeys.register(session.account_id, form.get("ceremony", ""),
                                                         form.get("credential", ""), form.get("name", "")[:64])
    return _page(request, handle, session, 200 if ok else 400,
                 message="account.passkey_added" if ok else "account.passkey_failed")


def _passkey_remove(request: Request, handle: str, session: SsoSession, form: dict[str, str]) -> Response:
    request.app.state.core.factors.passkeys.remove(session.account_id, form.get("credential_id", "")[:1400])
    return _page(request, handle, session, message="account.passkey_removed")


ACTIONS = {"totp_begin": _totp_begin, "totp_confirm": _totp_confirm, "totp_remove": _totp_remove,
           "passkey_begin": _passkey_begin, "passkey_register": _passkey_register, "passkey_remove": _passkey_remove}
