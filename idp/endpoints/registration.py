"""The client registration endpoint (RFC 7591 §3) and client configuration endpoint (RFC 7592 §2)."""
from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from idp.registration import service
from idp.untrusted import parse_json

NOT_JSON = object()


async def _json(request: Request) -> Any:
    """The JSON body, or NOT_JSON (refused by the metadata check); RFC 7591 §3.1: application/json."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json":
        return NOT_JSON
    try:
        return parse_json(await request.body())
    except (ValueError, UnicodeDecodeError):
        return NOT_JSON


def _send(reply: service.Reply) -> Response:
    status, body, headers = reply
    if body is None:
        return Response(status_code=status, headers=headers)
    return JSONResponse(body, status_code=status, headers=headers)


async def register(request: Request) -> Response:
    body = await _json(request)
    authorization = request.headers.get("authorization")
    return _send(await run_in_threadpool(service.register, request.app.state.core, authorization,
                                         None if body is NOT_JSON else body))


async def configuration(request: Request) -> Response:
    client_id = request.path_params["client_id"]
    authorization = request.headers.get("authorization")
    core = request.app.state.core
    if request.method == "GET":
        return _send(await run_in_threadpool(service.read, core, client_id, authorization))
    if request.method == "DELETE":
        return _send(await run_in_threadpool(service.delete, core, client_id, authorization))
    body = await _json(request)
    return _send(await run_in_threadpool(service.update, core, client_id, authorization,
                                         None if body is NOT_JSON else body))
