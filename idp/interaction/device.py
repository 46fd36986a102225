"""The user-code page (RFC 8628 §3.3): a person types the code a kiosk shows, then signs in and
consents on the same pages as any other sign-in, and the kiosk's next poll gets the tokens.

The form has no interaction yet, so its CSRF token is an HMAC of the browser id. Wrong codes are
counted per client address by the shared throttle (idp/throttle.py, every worker sees them) and the
address is locked past the limit, so the short user codes cannot be guessed by trying.
"""
from __future__ import annotations

import hashlib
import hmac

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from idp import events
from idp.core import Core
from idp.crypto import b64u, equal
from idp.interaction.login import read_form
from idp.interaction.pages import duration, render
from idp.interaction.web import browser_cookie, browser_id, outcome_response, page_locale, set_cookie
from idp.throttle import Verdict


def _csrf(core: Core, browser: str) -> str:
    return b64u(hmac.new(core.master.derive("device-form"), browser.encode(), hashlib.sha256).digest())


def _page(request: Request, browser: str, fresh: bool, typed: str, message: str | None = None,
          status: int = 200, verdict: Verdict | None = None) -> Response:
    core: Core = request.app.state.core
    context = {"csrf_token": _csrf(core, browser), "user_code": typed, "message": message,
               "message_values": {"wait": duration(page_locale(request), verdict.retry_after)} if verdict else {}}
    response = render(request, "device.html", context, locale=page_locale(request), status=status)
    if fresh:
        set_cookie(request, response, browser_cookie(request), browser, max_age=10 * 365 * 86400)
    if verdict:
        response.headers["Retry-After"] = str(verdict.retry_after)
    return response


async def show(request: Request) -> Response:
    """The entry form; `verification_uri_complete` fills the code in, the person still confirms it."""
    browser, fresh = browser_id(request)
    typed = request.query_params.get("user_code", "")[:32]
    return await run_in_threadpool(_page, request, browser, fresh, typed)


async def enter(request: Request) -> Response:
    return await run_in_threadpool(_enter, request, await read_form(request))


def _enter(request: Request, form: dict[str, str] | None) -> Response:
    core: Core = request.app.state.core
    browser, fresh = browser_id(request)
    if form is None or fresh or not equal(_csrf(core, browser), form.get("csrf_token", "")):
        return _page(request, browser, fresh, "", "login.csrf", 403)
    typed = form.get("user_code", "")[:32]
    keys = core.throttle.keys("user_code")  # this address: a code is nobody's account
    verdict = core.throttle.check(keys)
    if not verdict.allowed:
        return _page(request, browser, fresh, typed, "device.throttled", 429, verdict)
    found = core.devices.lookup(typed)
    if found is None:
        events.record(events.DEVICE_CODE_REFUSED, outcome="failure")
        verdict = core.throttle.failure(keys)
        if not verdict.allowed:  # this failure started the lock: say so now
            return _page(request, browser, fresh, typed, "device.throttled", 429, verdict)
        return _page(request, browser, fresh, typed, "device.unknown", 400)
    locale = page_locale(request)
    outcome = request.app.state.flow.device(found, browser, request.cookies.get(core.sessions.cookie), locale)
    return outcome_response(request, outcome, locale)
