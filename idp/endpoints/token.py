"""The token endpoint (RFC 6749 §3.2) and its siblings, introspection (RFC 7662) and revocation
(RFC 7009): one read of the body, client authentication by authlib, one hop into the sync core."""
from __future__ import annotations

import base64
import binascii
from typing import Any, Callable
from urllib.parse import unquote

from authlib.oauth2.rfc6749 import OAuth2Error
from authlib.oauth2.rfc6749.errors import InvalidRequestError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from idp import events
from idp.core import Core
from idp.endpoints.params import BadRequest, form_items, oauth_error, query_items
from idp.oauth.requests import OAuthRequest
from idp.oauth.server import OAuthResponse, json_body

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
SECRET_METHODS = ["client_secret_basic", "client_secret_post"]


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


async def _read(request: Request, required: str) -> list[tuple[str, str]]:
    if query_items(request):
        raise BadRequest("parameters belong in the body, not the query string")
    items = await form_items(request)
    check_basic_header(request.headers.get("authorization"))
    seen: set[str] = set()
    for key, _ in items:
        if key in seen:  # RFC 6749 §3.2: parameters must not be included more than once
            raise BadRequest(f"parameter {key} is repeated")
        seen.add(key)
    if required not in seen:  # RFC 6749 §5.2: a missing parameter is invalid_request
        raise BadRequest(f"{required} is required")
    return items


def _respond(status: int, body: Any, headers: list[tuple[str, str]]) -> Response:
    merged = dict(headers) | NO_STORE
    if status == 401:
        merged["WWW-Authenticate"] = 'Basic realm="yihao"'
    return Response(json_body(body), status_code=status, headers=merged, media_type="application/json")


def _endpoint(required: str, handle: Callable[[Core, OAuthRequest], OAuthResponse]) -> Callable[..., Any]:
    async def endpoint(request: Request) -> Response:
        try:
            items = await _read(request, required)
        except BadRequest as exc:
            if exc.status == 401:
                return oauth_error("invalid_client", exc.description, 401, {"WWW-Authenticate": 'Basic realm="yihao"'})
            return exc.response()
        core: Core = request.app.state.core
        oauth = OAuthRequest("POST", core.settings.issuer + request.url.path, request.headers, (), items)
        return _respond(*await run_in_threadpool(handle, core, oauth))

    return endpoint


def _guarded(handle: Callable[[Core, OAuthRequest], OAuthResponse]) -> Callable[[Core, OAuthRequest], OAuthResponse]:
    def run(core: Core, oauth: OAuthRequest) -> OAuthResponse:
        try:
            return handle(core, oauth)
        except OAuth2Error as error:
            return error.status_code, dict(error.get_body()), []

    return run


def _token(core: Core, oauth: OAuthRequest) -> OAuthResponse:
    return core.server.create_token_response(oauth)


def _is_jwt(token: str) -> bool:
    return token.count(".") == 2


@_guarded
def _introspect(core: Core, oauth: OAuthRequest) -> OAuthResponse:
    """RFC 7662, for confidential clients. An access token is a JWT its holder can already read, so any
    such client may learn whether one is live; a refresh token is opaque and shown only to its own
    client. Whatever is not live or not shown is `active: false`, without saying why."""
    client = core.server.authenticate_client(oauth, SECRET_METHODS, "introspection")
    token = oauth.form["token"]
    if _is_jwt(token):
        found = core.issuer.read_access_token(token)
        if found is None:
            return 200, {"active": False}, []
        claims = found[0]
        body = {"active": True, "token_type": "Bearer"}
        body |= {k: claims[k] for k in ("scope", "client_id", "sub", "aud", "iss", "exp", "iat", "jti",
                                        "auth_time", "acr") if k in claims}
        return 200, body, []
    family = core.refresh.find(token)
    if family is None or family.client_id != client.client_id:
        return 200, {"active": False}, []
    return 200, {"active": True, "token_type": "refresh_token", "scope": family.scope, "client_id": family.client_id,
                 "sub": core.issuer.subject(client, family.account_id), "iss": core.settings.issuer,
                 "iat": int(family.issued_at.timestamp()), "exp": int(family.expires_at.timestamp())}, []


@_guarded
def _revoke(core: Core, oauth: OAuthRequest) -> OAuthResponse:
    """RFC 7009: 200 whether or not the token was live, so a caller learns nothing from the answer;
    a token issued to another client is left alone."""
    client = core.server.authenticate_client(oauth, [*SECRET_METHODS, "none"], "revocation")
    token = oauth.form["token"]
    if not token:
        raise InvalidRequestError("token is required")
    if _is_jwt(token):
        found = core.issuer.read_access_token(token)
        if found is not None and found[0].get("client_id") == client.client_id:
            core.issuer.revoke_access_token(found[0])
            events.record(events.TOKEN_REVOKED, subject=found[1], client_id=client.client_id,
                          token_type="access_token")
    elif core.refresh.revoke(token, client.client_id):
        events.record(events.TOKEN_REVOKED, client_id=client.client_id, token_type="refresh_token")
    return 200, {}, []


token = _endpoint("grant_type", _token)
introspect = _endpoint("token", _introspect)
revoke = _endpoint("token", _revoke)
