"""The pushed authorization request endpoint (RFC 9126): the client posts what it would send to
/authorize, authenticated as at /token, and gets a single-use `request_uri` to send instead."""
from __future__ import annotations

from idp.clients import AUTH_METHODS
from idp.core import Core
from idp.endpoints.token import _endpoint, _guarded
from idp.oauth.flow import AuthorizationError, Flow
from idp.oauth.requests import OAuthRequest
from idp.oauth.server import OAuthResponse

CLIENT_AUTH = {"client_secret", "client_assertion", "client_assertion_type"}


@_guarded
def _push(core: Core, oauth: OAuthRequest) -> OAuthResponse:
    client = core.server.authenticate_client(oauth, list(AUTH_METHODS), "pushed_authorization_request")
    items = [(k, v) for k, v in oauth.form.items() if k not in CLIENT_AUTH]
    try:
        request_uri, expires_in = Flow(core).push(client, items)  # a Flow holds nothing but the core
    except AuthorizationError as exc:  # RFC 9126 §2.3: the authorization endpoint's errors, as JSON
        return 400, {"error": exc.error, "error_description": exc.description}, []
    return 201, {"request_uri": request_uri, "expires_in": expires_in}, []


par = _endpoint(None, _push, may_fetch=True)  # a request object's keys may sit at the client's jwks_uri
