"""What the grants share: per-client scope checks and resource indicators (RFC 8707)."""
from __future__ import annotations

from typing import Iterable

from authlib.oauth2.rfc6749 import OAuth2Error
from authlib.oauth2.rfc6749.errors import InvalidScopeError
from authlib.oauth2.rfc6749.util import scope_to_list

from idp.clients import SUPPORTED_SCOPES, RegisteredClient

USER_SCOPES = frozenset(SUPPORTED_SCOPES)  # scopes about a person: meaningless without one


class InvalidTargetError(OAuth2Error):
    """RFC 8707 §2: the requested resource is invalid, unknown, or not allowed for this client."""

    error = "invalid_target"


class ClientScopes:
    """Requested scopes must be OpenID Connect scopes or scopes the client is registered for."""

    request: object

    def validate_requested_scope(self) -> None:
        scope = self.request.payload.scope  # type: ignore[attr-defined]
        client: RegisteredClient = self.request.client  # type: ignore[attr-defined]
        unknown = set(scope_to_list(scope) or ()) - USER_SCOPES - client.allowed_scopes
        if unknown:
            raise InvalidScopeError()


def requested_resources(client: RegisteredClient, values: Iterable[str]) -> tuple[str, ...]:
    """The `resource` values of a request, each one the client may ask for (RFC 8707 §2)."""
    resources = tuple(dict.fromkeys(values))
    for resource in resources:
        if resource not in client.resources:
            raise InvalidTargetError(f"resource {resource!r} is not a resource this client may ask for")
    return resources


def token_audience(client: RegisteredClient, granted: tuple[str, ...], asked: str | None) -> str | list[str] | None:
    """The access token's `aud`: the resource asked for at the token endpoint, else what was granted,
    else the client's default resource; None means the provider itself (userinfo)."""
    if asked is not None:
        if asked not in (granted or client.resources):
            raise InvalidTargetError(f"resource {asked!r} was not granted to this client")
        return asked
    if granted:
        return granted[0] if len(granted) == 1 else list(granted)
    return client.default_resource
