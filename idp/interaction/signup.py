"""Real-name sign-up inside a login interaction: name + ID number (+ phone) + username + password,
verified against the population registry; a verified person is signed in at identity level L2 and
the flow goes on. What each answer reveals is decided in realname.verification."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from idp.accounts import AccountInputError
from idp.authn import acr
from idp.interaction.login import EXPIRED, PASSWORD_AMR, interaction_locale, interaction_record, read_form, signed_in
from idp.interaction.pages import render
from idp.interaction.web import outcome_response, page_locale
from realname.errors import ValidationError
from realname.pii import IdNumber

PHONE = re.compile(r"^\+?[0-9]{6,20}$")
MAX_NAME = 64
# The page, and its HTTP status, for each outcome that does not sign the person in.
OUTCOMES = {"no_match": 200, "taken": 200, "unavailable": 503, "throttled": 429}


@dataclass(frozen=True)
class Invalid:
    message: str  # a locale key
    detail: str | None = None


def parse_identity(form: dict[str, str], locale: str) -> tuple[str, IdNumber] | Invalid:
    """The name and the validated ID number of a sign-up or verification form."""
    name = " ".join(form.get("name", "").split())
    if not name or len(name) > MAX_NAME or any(not c.isprintable() for c in name):
        return Invalid("signup.bad_name")
    try:
        return name, IdNumber.parse(form.get("id_number", ""))
    except ValidationError as exc:  # names the failing part, never the number
        return Invalid("signup.bad_id_number", exc.message_zh if locale == "zh-CN" else exc.message_en)


async def show(request: Request) -> Response:
    return await run_in_threadpool(_show, request)


def _show(request: Request) -> Response:
    uid, record = interaction_record(request)
    if record is None or record["s"] != "login":
        return outcome_response(request, EXPIRED, page_locale(request))
    return page(request, uid, record)


def page(request: Request, uid: str, record: dict[str, Any], message: str | None = None,
         form: dict[str, str] | None = None, status: int = 200, detail: str | None = None) -> Response:
    """The form again, with what was typed except the ID number and the password."""
    form = form or {}
    context = {"uid": uid, "csrf_token": record["x"], "message": message, "detail": detail,
               "name": form.get("name", "")[:MAX_NAME], "username": form.get("username", "")[:128],
               "phone": form.get("phone", "")[:24]}
    return render(request, "signup.html", context, locale=interaction_locale(request, record), status=status)


async def submit(request: Request) -> Response:
    return await run_in_threadpool(_submit, request, await read_form(request))


def _submit(request: Request, form: dict[str, str] | None) -> Response:
    uid, record = interaction_record(request)
    if record is None or record["s"] != "login":
        return outcome_response(request, EXPIRED, page_locale(request))
    flow = request.app.state.flow
    if form is None or not flow.check_csrf(record, form.get("csrf_token")):
        return page(request, uid, record, "login.csrf", status=403)
    phone = "".join(form.get("phone", "").split())
    identity = parse_identity(form, interaction_locale(request, record))
    if isinstance(identity, Invalid):
        return page(request, uid, record, identity.message, form, 400, identity.detail)
    if phone and not PHONE.match(phone):
        return page(request, uid, record, "signup.bad_phone", form, 400)
    name, id_number = identity
    core = request.app.state.core
    try:
        result = core.verification.sign_up(name=name, id_number=id_number, username=form.get("username", "").strip(),
                                           password=form.get("password", ""), phone=phone or None,
                                           address=request.client.host if request.client else None)
    except AccountInputError as exc:
        key = "signup.username_taken" if str(exc) == "username_taken" else "signup.bad_credentials"
        return page(request, uid, record, key, form, 400)
    if result.status != "verified":
        return page(request, uid, record, f"signup.{result.status}", form, OUTCOMES[result.status])
    assert result.profile is not None
    return signed_in(request, uid, record, result.profile, PASSWORD_AMR, acr.PASSWORD_STRENGTH)
