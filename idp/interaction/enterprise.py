"""The enterprise chooser after login: a person who may act for enterprises picks one (or none)."""
from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from idp.interaction.login import EXPIRED, interaction_locale, interaction_record, read_form, session_still_here
from idp.interaction.pages import render
from idp.interaction.web import outcome_response, page_locale
from idp.tokens import Authentication


def page(request: Request, uid: str, record: dict[str, Any], message: str | None = None, status: int = 200) -> Response:
    core = request.app.state.core
    client = core.clients.get(record["c"])
    account_id = Authentication.from_json(record["u"]).account_id
    context = {"uid": uid, "csrf_token": record["x"], "client_name": client.name if client else record["c"],
               "message": message, "mandates": core.enterprises.mandates(account_id)}
    return render(request, "enterprise.html", context, locale=interaction_locale(request, record), status=status)


async def choose(request: Request) -> Response:
    return await run_in_threadpool(_choose, request, await read_form(request))


def _choose(request: Request, form: dict[str, str] | None) -> Response:
    uid, record = interaction_record(request)
    if record is None:
        return outcome_response(request, EXPIRED, page_locale(request))
    flow = request.app.state.flow
    if form is None or not flow.check_csrf(record, form.get("csrf_token")):
        return page(request, uid, record, "login.csrf", status=403) if record["s"] == "enterprise" else \
            outcome_response(request, EXPIRED, page_locale(request))
    if record["s"] != "enterprise" or not session_still_here(request, (record.get("u") or {}).get("s")):
        return outcome_response(request, EXPIRED, page_locale(request))
    outcome = flow.choose_enterprise(uid, record, form.get("enterprise") or None)
    return outcome_response(request, outcome, interaction_locale(request, record))
