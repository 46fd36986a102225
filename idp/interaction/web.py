"""Turning flow outcomes into responses, and the cookies the browser carries through a flow."""
from __future__ import annotations

from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from idp.crypto import equal, random_token
from idp.endpoints.params import BadRequest, form_items
from idp.interaction.pages import negotiate, render
from idp.oauth.flow import Outcome
from idp.store.ephemeral import get_json

BROWSER_COOKIE = "yihao_browser"


def page_locale(request: Request, ui_locales: str | None = None) -> str:
    return negotiate(request, request.app.state.core.settings.default_locale, ui_locales)


def browser_id(request: Request) -> tuple[str, bool]:
    """A random per-browser id binding interactions to the browser that started them."""
    name = browser_cookie(request)
    current = request.cookies.get(name)
    if current and 20 <= len(current) <= 64:
        return current, False
    return random_token(24), True


def browser_cookie(request: Request) -> str:
    return ("__Host-" if request.app.state.core.settings.secure_cookies else "") + BROWSER_COOKIE


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int | None = None) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", httponly=True, samesite="lax",
                        secure=request.app.state.core.settings.secure_cookies)


def origin(uri: str) -> str:
    """scheme://host[:port] of an absolute URI, as CSP source lists name it."""
    return "{0.scheme}://{0.netloc}".format(urlsplit(uri))


def outcome_response(request: Request, outcome: Outcome, locale: str, new_browser: str | None = None) -> Response:
    response: Response
    if outcome.redirect is not None:
        response = RedirectResponse(outcome.redirect, status_code=303, headers={"Cache-Control": "no-store"})
    elif outcome.form_post is not None:
        action, values = outcome.form_post
        response = render(request, "form_post.html", {"action": action, "values": values}, locale=locale,
                          form_action=origin(action))
    else:
        response = render(request, outcome.page or "error.html", outcome.context, locale=locale, status=outcome.status)
    if new_browser:
        set_cookie(request, response, browser_cookie(request), new_browser, max_age=10 * 365 * 86400)
    if outcome.set_session:
        set_cookie(request, response, request.app.state.core.sessions.cookie, outcome.set_session)
    elif outcome.clear_session:
        clear_session_cookie(request, response)
    return response


def clear_session_cookie(request: Request, response: Response) -> None:
    core = request.app.state.core
    response.delete_cookie(core.sessions.cookie, path="/", secure=core.settings.secure_cookies, httponly=True,
                           samesite="lax")


async def read_form(request: Request) -> dict[str, str] | None:
    """The urlencoded form of a page's POST, or None when it cannot be read (the page says so)."""
    try:
        return dict(await form_items(request))
    except BadRequest:
        return None


def browser_record(request: Request, key: str, ident: str) -> dict | None:
    """The stored record under `key` if it belongs to this browser (its `b` is the browser cookie)."""
    record = get_json(request.app.state.core.store, key) if len(ident) <= 64 else None
    browser = request.cookies.get(browser_cookie(request))
    if not isinstance(record, dict) or not browser or not equal(record["b"], browser):
        return None
    return record
