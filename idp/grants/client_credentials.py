"""The client_credentials grant (RFC 6749 §4.4): a service calls another as itself.

Nothing here touches SQL: the client comes from the registry's cache, the key from the key ring's.
"""
from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import InvalidScopeError
from authlib.oauth2.rfc6749.util import list_to_scope, scope_to_list

from idp import events
from idp.clients import CONFIDENTIAL_METHODS
from idp.grants.common import USER_SCOPES, ClientScopes, access_token_response, token_audience
from idp.metrics import token_issued


class ClientCredentialsGrant(ClientScopes, grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = [*CONFIDENTIAL_METHODS, "tls_client_auth"]

    def validate_requested_scope(self) -> None:
        # Only the client's own API scopes: OpenID Connect scopes need a person.
        requested = set(scope_to_list(self.request.payload.scope) or ())
        if requested & USER_SCOPES:
            raise InvalidScopeError("scopes about a person cannot be granted to a client acting as itself")
        super().validate_requested_scope()

    def create_token_response(self) -> tuple[int, Any, list]:
        client = self.request.client
        requested = scope_to_list(self.request.payload.scope)
        scope = list_to_scope(requested if requested else sorted(client.allowed_scopes - USER_SCOPES))
        audience = token_audience(client, (), self.request.form.get("resource"))
        token = access_token_response(self, None, scope, audience)
        token_issued(self.GRANT_TYPE)
        events.record(events.TOKEN_ISSUED, client_id=client.client_id, grant_type=self.GRANT_TYPE)
        return 200, token, self.TOKEN_RESPONSE_HEADER
