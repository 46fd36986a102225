"""What the grants share: per-client scope checks and resource indicators (RFC 8707)."""
from __future__ import annotations

import re
from typing import Any, Iterable

from authlib.oauth2.rfc6749 import OAuth2Error
from authlib.oauth2.rfc6749.errors import InvalidGrantError, InvalidScopeError
from authlib.oauth2.rfc6749.util import scope_to_list

from idp import events
from idp.clients import SUPPORTED_SCOPES, RegisteredClient
from idp.metrics import token_issued
from idp.oauth.mtls import bound_x5t

USER_SCOPES = frozenset(SUPPORTED_SCOPES)  # scopes about a person: meaningless without one


class InvalidTargetError(OAuth2Error):
    """RFC 8707 §2: the requested resource is invalid, unknown, or not allowed for this client."""

    error = "invalid_target"


class InvalidDPoPProofError(OAuth2Error):
    """RFC 9449 §5: the DPoP proof is missing where required, invalid, or of another key."""

    error = "invalid_dpop_proof"


def access_token_response(grant: Any, auth: Any, scope: str, audience: str | list[str] | None) -> dict[str, Any]:
    """The access-token part of a token response: DPoP-bound (RFC 9449 §5) when the request carried a
    proof, else a bearer token (RFC 6750)."""
    jkt = grant.request.dpop_jkt
    token, ttl = grant.server.issuer.access_token(grant.request.client, auth, scope, audience, jkt=jkt,
                                                  x5t=bound_x5t(grant.request, grant.request.client))
    response: dict[str, Any] = {"access_token": token, "token_type": "DPoP" if jkt else "Bearer", "expires_in": ttl}
    if scope:
        response["scope"] = scope
    return response


def person_tokens(grant: Any, auth: Any, scope: str, resources: tuple[str, ...], nonce: str | None) -> dict[str, Any]:
    """A token response for a person's grant (authorization code, device code): the access token,
    a refresh token when the client may have one, an ID token for `openid`."""
    if not grant.server.accounts.active(auth.account_id):  # disabled since the code was issued or the device approved
        raise InvalidGrantError("the end-user's account is not active")
    client, request = grant.request.client, grant.request
    token = access_token_response(grant, auth, scope, token_audience(client, resources, request.form.get("resource")))
    scopes = scope.split()
    if client.check_grant_type("refresh_token") and ("offline_access" in scopes or client.session_refresh_tokens):
        # RFC 9449 §5: a public client's refresh tokens are bound to its DPoP key (a confidential
        # client's are already bound to its credentials)
        token["refresh_token"] = grant.server.refresh.issue(
            client.client_id, auth, scope, resources, "offline_access" in scopes,
            dpop_jkt=request.dpop_jkt if client.public else None)
    if "openid" in scopes:
        token["id_token"] = grant.server.issuer.id_token(client, auth, nonce=nonce, access_token=token["access_token"],
                                                         extra=grant.server.requested_id_token_claims(client, auth))
    token_issued(grant.GRANT_TYPE)
    events.record(events.TOKEN_ISSUED, subject=auth.account_id, client_id=client.client_id,
                  grant_type=grant.GRANT_TYPE)
    return token


class ClientScopes:
    """Requested scopes must be OpenID Connect scopes or scopes the client is registered for."""

    request: object

    def validate_requested_scope(self) -> None:
        check_scope(self.request.client, self.request.payload.scope)  # type: ignore[attr-defined]


def check_scope(client: RegisteredClient, scope: str | None) -> None:
    """Requested scopes must be OpenID Connect scopes or scopes the client is registered for."""
    if set(scope_to_list(scope) or ()) - USER_SCOPES - client.allowed_scopes:
        raise InvalidScopeError()


_SHOWABLE = re.compile(r"[\x20-\x21\x23-\x26\x28-\x5b\x5d-\x7e]{1,256}")


def shown(value: str | None) -> str:
    """`value` quoted for an error_description, whose characters RFC 6749 §5.2 limits to printable
    ASCII without '"' and '\\' (authlib refuses to build an error holding others); else a placeholder."""
    return f"'{value}'" if value is not None and _SHOWABLE.fullmatch(value) else "(a value that cannot be shown)"


def requested_resources(client: RegisteredClient, values: Iterable[str]) -> tuple[str, ...]:
    """The `resource` values of a request, each one the client may ask for (RFC 8707 §2)."""
    resources = tuple(dict.fromkeys(values))
    for resource in resources:
        if resource not in client.resources:
            raise InvalidTargetError(f"resource {shown(resource)} is not a resource this client may ask for")
    return resources


def token_audience(client: RegisteredClient, granted: tuple[str, ...], asked: str | None) -> str | list[str] | None:
    """The access token's `aud`: the resource asked for at the token endpoint, else what was granted,
    else the client's default resource; None means the provider itself (userinfo)."""
    if asked is not None:
        if asked not in (granted or client.resources):
            raise InvalidTargetError(f"resource {shown(asked)} was not granted to this client")
        return asked
    if granted:
        return granted[0] if len(granted) == 1 else list(granted)
    return client.default_resource
