"""The authorization endpoint (RFC 6749 §3.1, OIDC Core §3.1.2): GET and POST."""
from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from idp.endpoints import sync
from idp.endpoints.params import BadRequest, form_items, query_items
from idp.interaction.web import browser_id, outcome_response, page_locale
from idp.oauth.flow import AuthorizeInput, error_page


async def authorize(request: Request) -> Response:
    app = request.app.state
    try:
        items = await form_items(request) if request.method == "POST" else query_items(request)
    except BadRequest as exc:
        return outcome_response(request, error_page("invalid_request", exc.description), page_locale(request))
    browser, fresh = browser_id(request)
    req = AuthorizeInput(request.method, app.core.settings.issuer + "/authorize", request.headers, items,
                         request.cookies.get(app.core.sessions.cookie), browser)
    # A request object (by value or by reference) may make the core fetch the client's keys or the object.
    inline = app.core.local_io and not any(key in ("request", "request_uri") for key, _ in items)
    outcome = await sync.run(inline, app.flow.authorize, req)
    ui_locales = dict(items).get("ui_locales")
    return outcome_response(request, outcome, page_locale(request, ui_locales), new_browser=browser if fresh else None)
