"""The token endpoint (RFC 6749 §3.2) and its siblings, introspection (RFC 7662) and revocation
(RFC 7009): one read of the body, client authentication by authlib, one hop into the sync core."""
from __future__ import annotations

import base64
import binascii
import re
from typing import Any, Callable
from urllib.parse import unquote

from authlib.oauth2.rfc6749 import OAuth2Error
from authlib.oauth2.rfc6749.errors import InvalidRequestError
from starlette.requests import Request
from starlette.responses import Response

from idp import events
from idp.clients import AUTH_METHODS, CONFIDENTIAL_METHODS
from idp.core import Core
from idp.dpop import DPoPError
from idp.events import address_var
from idp.endpoints import sync
from idp.endpoints.params import BadRequest, form_items, oauth_error, query_items
from idp.oauth.requests import OAuthRequest
from idp.oauth.server import OAuthResponse, json_body
from idp.pki.mtls import forwarded_certificate
from idp.throttle import Key

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
CONTROL = re.compile("[\x00-\x1f\x7f]")


def basic_client_id(value: str | None) -> str | None:
    """The client id of a Basic Authorization header (RFC 6749 §2.3.1: form-encoded), or None.

    Raises BadRequest (401) for a malformed header: the client's error, never a server error."""
    if not value or not value[:6].lower() == "basic ":
        return None
    try:
        decoded = base64.b64decode(value[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        decoded = ""
    # RFC 6749 §2.3.1 and App. A.1: a form-encoded id and secret, neither holding control characters
    if ":" not in decoded or CONTROL.search(unquote(decoded)):
        raise BadRequest("the Authorization header is not valid Basic credentials", 401)
    return unquote(decoded.split(":", 1)[0])


async def _read(request: Request, required: str | None) -> tuple[list[tuple[str, str]], str | None]:
    """The parameters, and the client id they claim (Basic header, else `client_id`)."""
    if query_items(request):
        raise BadRequest("parameters belong in the body, not the query string")
    items = await form_items(request)
    basic = basic_client_id(request.headers.get("authorization"))
    seen: set[str] = set()
    for key, _ in items:
        if key in seen:  # RFC 6749 §3.2: parameters must not be included more than once
            raise BadRequest(f"parameter {key} is repeated")
        seen.add(key)
    if required is not None and required not in seen:  # RFC 6749 §5.2: a missing parameter is invalid_request
        raise BadRequest(f"{required} is required")
    return items, basic or dict(items).get("client_id")


def _respond(status: int, body: Any, headers: list[tuple[str, str]]) -> Response:
    merged = dict(headers) | NO_STORE
    if status == 401:
        merged["WWW-Authenticate"] = 'Basic realm="yihao"'
    return Response(json_body(body), status_code=status, headers=merged, media_type="application/json")


def _endpoint(required: str | None, handle: Callable[[Core, OAuthRequest], OAuthResponse], *,
              may_fetch: bool = False,
              store_only: Callable[[dict[str, str]], bool] = lambda params: False) -> Callable[..., Any]:
    """`may_fetch`: the endpoint itself may fetch (a request object's keys), so it never runs inline.
    `store_only(params)`: the request waits on nothing but the store, so it may run on the loop."""

    async def endpoint(request: Request) -> Response:
        core: Core = request.app.state.core
        try:
            items, client_id = await _read(request, required)
        except BadRequest as exc:
            if exc.status == 401:
                where = sync.place(core.local_io, local=True, store_only=True)  # counters only
                refused = await sync.run(where, _failed, core, core.throttle.keys("client"))
                if refused is not None:
                    return _respond(*refused)
                return oauth_error("invalid_client", exc.description, 401, {"WWW-Authenticate": 'Basic realm="yihao"'})
            return exc.response()
        # the route's own path (request.url would rebuild the whole URL from the scope for it)
        oauth = OAuthRequest("POST", core.settings.issuer + request.scope["path"], request.headers, (), items)
        oauth.client_certificate = forwarded_certificate(request)  # RFC 8705, from a trusted proxy only
        params = dict(items)
        where = sync.place(core.local_io, local=not may_fetch and _stays_local(params, oauth),
                           store_only=store_only(params))
        return _respond(*await sync.run(where, _throttled, handle, core, oauth, client_id))

    return endpoint


def _stays_local(params: dict[str, str], oauth: OAuthRequest) -> bool:
    """Nothing in this request can make the core fetch: no assertion to check against a jwks_uri, no
    certificate whose CRL may be fetched, no grant that checks an upstream's token."""
    grant = params.get("grant_type")
    return ((grant is None or grant in sync.LOCAL_GRANTS) and "client_assertion" not in params
            and oauth.client_certificate is None)


def _client_keys(core: Core, client_id: str | None) -> tuple[Key, ...]:
    """Failed client authentications count per client *at this address* and per address: a lock on the
    client id alone would let anyone who knows a public client_id lock out every user of that client,
    and its secret (256 bits) is not guessable from many addresses either."""
    address = address_var.get() or ""
    return core.throttle.keys("client", account=f"{client_id} {address}" if client_id else None)


def _locked(core: Core, keys: tuple[Key, ...]) -> OAuthResponse | None:
    """429 when the caller's client (at this address) or address is locked, else None."""
    verdict = core.throttle.check(keys)
    if verdict.allowed:
        return None
    # RFC 6585 §4: 429 with Retry-After; `slow_down` is the registered error for "ask less often"
    # (RFC 8628 §3.5). Nothing in it depends on whether the client exists.
    description = f"too many failed client authentications; retry after {verdict.retry_after} seconds"
    return 429, {"error": "slow_down", "error_description": description}, [("Retry-After", str(verdict.retry_after))]


def _failed(core: Core, keys: tuple[Key, ...]) -> OAuthResponse | None:
    """After a failed client authentication: 429 while locked (the attempt is not counted), else the
    failure is counted and None."""
    refused = _locked(core, keys)
    if refused is None:
        core.throttle.failure(keys)
    return refused


def _throttled(handle: Callable[[Core, OAuthRequest], OAuthResponse], core: Core, oauth: OAuthRequest,
               client_id: str | None) -> OAuthResponse:
    """`handle`, with the lock in the way of failing callers only.

    A client credential cannot be guessed (a 256-bit secret, a private key, a certificate), so a lock
    has nothing to protect from a caller who proves one. For a client this worker holds,
    authenticating costs less than looking at the lock, so it comes first: a request that succeeds
    costs no look at the store and is not refused (one misconfigured application behind a shared
    egress address cannot lock out its neighbours there), and a failure is refused with 429 while
    locked (uncounted) and counted otherwise. A client this worker does not hold costs a database read
    to look up, so for one the lock comes first (random client ids from a locked address are refused
    before that read; a real client cold in this worker waits for the lock, as every client once did).
    Fetches a failing caller could cause (a client's key set) are bounded by their own cache and
    refetch interval."""
    if core.clients.held(client_id):
        status, body, headers = handle(core, oauth)
        if _authenticated(status, body):
            return status, body, headers
        return _failed(core, _client_keys(core, client_id)) or (status, body, headers)
    keys = _client_keys(core, client_id)
    refused = _locked(core, keys)
    if refused is not None:
        return refused
    status, body, headers = handle(core, oauth)
    if not _authenticated(status, body):
        core.throttle.failure(keys)  # the lock was looked at just now
    return status, body, headers


def _authenticated(status: int, body: Any) -> bool:
    """Whether the client authenticated (the request may still have failed for another reason)."""
    return status != 401 and not (isinstance(body, dict) and body.get("error") == "invalid_client")


def _guarded(handle: Callable[[Core, OAuthRequest], OAuthResponse]) -> Callable[[Core, OAuthRequest], OAuthResponse]:
    def run(core: Core, oauth: OAuthRequest) -> OAuthResponse:
        try:
            return handle(core, oauth)
        except OAuth2Error as error:
            return error.status_code, dict(error.get_body()), []

    return run


def _token(core: Core, oauth: OAuthRequest) -> OAuthResponse:
    values = oauth.headers.getlist("dpop")
    # RFC 9449 §8.2: whoever sends proofs gets the current nonce with every answer
    nonce = [("DPoP-Nonce", core.dpop.nonce())] if values else []
    try:
        proof = core.dpop.check(values, "POST", oauth.uri)
    except DPoPError as refused:
        return 400, {"error": refused.error, "error_description": refused.description}, nonce
    oauth.dpop_jkt = proof.jkt if proof else None
    status, body, headers = core.server.create_token_response(oauth)
    return status, body, headers + nonce


def _is_jwt(token: str) -> bool:
    return token.count(".") == 2


@_guarded
def _introspect(core: Core, oauth: OAuthRequest) -> OAuthResponse:
    """RFC 7662, for confidential clients. An access token is a JWT its holder can already read, so any
    such client may learn whether one is live; a refresh token is opaque and shown only to its own
    client. Whatever is not live or not shown is `active: false`, without saying why."""
    client = core.server.authenticate_client(oauth, list(CONFIDENTIAL_METHODS), "introspection")
    token = oauth.form["token"]
    if _is_jwt(token):
        found = core.issuer.read_access_token(token)
        # RFC 7592 §2.3: a deleted client's tokens end (as at userinfo)
        if found is None or core.clients.get(str(found[0].get("client_id"))) is None:
            return 200, {"active": False}, []
        claims = found[0]
        # RFC 9449 §6.2: a DPoP-bound token shows its confirmation (cnf.jkt); a certificate-bound one
        # (RFC 8705, cnf.x5t#S256) is a Bearer token the resource server checks against the TLS client
        bound_to_key = isinstance(claims.get("cnf"), dict) and "jkt" in claims["cnf"]
        body = {"active": True, "token_type": "DPoP" if bound_to_key else "Bearer"}
        body |= {k: claims[k] for k in ("scope", "client_id", "sub", "aud", "iss", "exp", "iat", "jti",
                                        "auth_time", "acr", "cnf") if k in claims}
        return 200, body, []
    family = core.refresh.find(token)
    if family is None or family.client_id != client.client_id:
        return 200, {"active": False}, []
    return 200, {"active": True, "token_type": "refresh_token", "scope": family.scope, "client_id": family.client_id,
                 "sub": core.issuer.subject(client, family.account_id), "iss": core.settings.issuer,
                 "iat": int(family.issued_at.timestamp()), "exp": int(family.expires_at.timestamp()),
                 **({"cnf": {"jkt": family.dpop_jkt}} if family.dpop_jkt else {})}, []


@_guarded
def _revoke(core: Core, oauth: OAuthRequest) -> OAuthResponse:
    """RFC 7009: 200 whether or not the token was live, so a caller learns nothing from the answer;
    a token issued to another client is left alone."""
    client = core.server.authenticate_client(oauth, list(AUTH_METHODS), "revocation")
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


@_guarded
def _device_authorization(core: Core, oauth: OAuthRequest) -> OAuthResponse:
    """RFC 8628 §3.1: codes for a device; the client authenticates as at the token endpoint."""
    return core.server.create_endpoint_response("device_authorization", oauth)


def _jwt_param(params: dict[str, str]) -> bool:
    """An access token (a JWT) is checked against the store's revocation marks; a refresh token is a row."""
    return _is_jwt(params.get("token", ""))


token = _endpoint("grant_type", _token, store_only=lambda params: params.get("grant_type") in sync.STORE_ONLY_GRANTS)
device_authorization = _endpoint(None, _device_authorization)
introspect = _endpoint("token", _introspect, store_only=_jwt_param)
revoke = _endpoint("token", _revoke, store_only=_jwt_param)
