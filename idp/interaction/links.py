"""The person's own account page for upstream links: list them, remove one (CSRF-protected)."""
from __future__ import annotations

import hashlib
import hmac

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from idp.core import Core
from idp.crypto import b64u, equal
from idp.interaction.pages import render
from idp.interaction.web import page_locale, read_form


def _csrf(core: Core, handle: str) -> str:
    """A form token bound to the session handle: a page of another site cannot know it."""
    return b64u(hmac.new(core.master.derive("account-csrf"), handle.encode(), hashlib.sha256).digest())


async def links(request: Request) -> Response:
    return await run_in_threadpool(_links, request)


def _links(request: Request, status: int = 200) -> Response:
    core: Core = request.app.state.core
    handle = request.cookies.get(core.sessions.cookie)
    session = core.sessions.load(handle)
    if session is None or handle is None:
        return render(request, "account_links.html", {"signed_out": True}, locale=page_locale(request), status=401)
    names = {u.slug: u.name for u in core.federation.upstreams.all()}
    rows = [{"id": link.id, "upstream": names.get(link.upstream, link.upstream), "how": link.linked_by,
             "when": link.created_at.date().isoformat()} for link in core.federation.links.of_account(session.account_id)]
    return render(request, "account_links.html", {"links": rows, "csrf_token": _csrf(core, handle)},
                  locale=page_locale(request), status=status)


async def unlink(request: Request) -> Response:
    return await run_in_threadpool(_unlink, request, await read_form(request) or {})


def _unlink(request: Request, form: dict[str, str]) -> Response:
    core: Core = request.app.state.core
    handle = request.cookies.get(core.sessions.cookie)
    session = core.sessions.load(handle)
    if session is None or handle is None:
        return _links(request)
    if not equal(_csrf(core, handle), form.get("csrf_token") or ""):
        return _links(request, status=403)
    core.federation.links.remove(request.path_params["link_id"][:64], account_id=session.account_id,
                                 actor=session.account_id)
    return RedirectResponse("/account/links", status_code=303, headers={"Cache-Control": "no-store"})
