"""The token endpoint (RFC 6749 §3.2): one read of the body, one hop into the synchronous core."""
from __future__ import annotations

import base64
import binascii
from urllib.parse import unquote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from idp.endpoints.params import BadRequest, form_items, oauth_error, query_items
from idp.oauth.requests import OAuthRequest
from idp.oauth.server import json_body

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def check_basic_header(value: str | None) -> None:
    """A malformed Basic header is the client's error (401), never a server error."""
    if not value or not value[:6].lower() == "basic ":
        return
    try:
        decoded = base64.b64decode(value[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        decoded = ""
    # RFC 6749 §2.3.1 and App. A.1: a form-encoded id and secret, neither holding control characters
    if ":" not in decoded or any(ord(c) < 0x20 or ord(c) == 0x7F for c in unquote(decoded)):
        raise BadRequest("the Authorization header is not valid Basic credentials", 401)


async def token(request: Request) -> Response:
    try:
        if query_items(request):
            raise BadRequest("token request parameters belong in the body, not the query string")
        items = await form_items(request)
        check_basic_header(request.headers.get("authorization"))
        seen: set[str] = set()
        for key, _ in items:
            if key in seen:  # RFC 6749 §3.2: parameters must not be included more than once
                raise BadRequest(f"parameter {key} is repeated")
            seen.add(key)
        if "grant_type" not in seen:  # RFC 6749 §5.2: a missing parameter is invalid_request
            raise BadRequest("grant_type is required")
    except BadRequest as exc:
        if exc.status == 401:
            return oauth_error("invalid_client", exc.description, 401, {"WWW-Authenticate": 'Basic realm="yihao"'})
        return exc.response()
    core = request.app.state.core
    oauth = OAuthRequest("POST", core.settings.issuer + "/token", request.headers, (), items)
    status, body, headers = await run_in_threadpool(core.server.create_token_response, oauth)
    merged = dict(headers) | NO_STORE
    if status == 401:
        merged["WWW-Authenticate"] = 'Basic realm="yihao"'
    return Response(json_body(body), status_code=status, headers=merged, media_type="application/json")
