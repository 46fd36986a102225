"""The refresh_token grant (RFC 6749 §6): rotation on every use, family revocation on reuse."""
from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import (InvalidGrantError, InvalidRequestError, InvalidScopeError,
                                           UnauthorizedClientError)
from authlib.oauth2.rfc6749.util import scope_to_list

from idp import events
from idp.clients import AUTH_METHODS
from idp.grants.common import InvalidDPoPProofError, access_token_response, token_audience
from idp.metrics import token_issued
from idp.refresh import Family, RefreshRejected


class RefreshTokenGrant(grants.BaseGrant, grants.TokenEndpointMixin):
    GRANT_TYPE = "refresh_token"
    TOKEN_ENDPOINT_AUTH_METHODS = [*AUTH_METHODS, "tls_client_auth"]

    def validate_token_request(self) -> None:
        client = self.authenticate_token_endpoint_client()
        if not client.check_grant_type(self.GRANT_TYPE):
            raise UnauthorizedClientError("the client is not allowed the refresh_token grant")
        if not self.request.form.get("refresh_token"):
            raise InvalidRequestError("refresh_token is required")
        self.request.client = client

    def create_token_response(self) -> tuple[int, Any, list]:
        client = self.request.client
        form = self.request.form
        asked = scope_to_list(self.request.payload.scope)
        chosen: dict[str, Any] = {}

        def vet(family: Family) -> None:
            # RFC 6749 §6: a narrower scope may be asked for; the refresh token keeps the original one.
            original = scope_to_list(family.scope) or []
            if asked and not set(asked) <= set(original):
                raise InvalidScopeError("the requested scope exceeds the scope originally granted")
            chosen["scope"] = " ".join(asked or original)
            chosen["audience"] = token_audience(client, family.resources, form.get("resource"))
            if not self.server.accounts.active(family.account_id):  # disabled since the login: no more tokens
                raise InvalidGrantError("the end-user's account is not active")
            acting_for = family.auth.acting_for
            if acting_for and self.server.enterprises.mandate(family.account_id, acting_for) is None:
                # the mandate ended (period over, or withdrawn): no more tokens that act for the enterprise
                raise InvalidGrantError("the end-user no longer acts for this enterprise")
            # RFC 9449 §5: a key-bound family is refreshed only with a proof of the same key
            if family.dpop_jkt is not None and self.request.dpop_jkt is None:
                raise InvalidDPoPProofError("the refresh token is DPoP-bound; send a DPoP proof of its key")
            if family.dpop_jkt is not None and family.dpop_jkt != self.request.dpop_jkt:
                raise InvalidGrantError("the refresh token is bound to another DPoP key")

        try:
            successor, family = self.server.refresh.rotate(form["refresh_token"], client.client_id, vet)
        except RefreshRejected as rejected:
            raise InvalidGrantError(str(rejected)) from None
        scope, audience = chosen["scope"], chosen["audience"]
        token = access_token_response(self, family.auth, scope, audience) | {"refresh_token": successor}
        if "openid" in scope.split():  # OIDC Core §12.2: same sub, auth_time and acr; no nonce
            token["id_token"] = self.server.issuer.id_token(client, family.auth, nonce=None,
                                                             access_token=token["access_token"],
                                                             extra=self.server.requested_id_token_claims(client, family.auth))
        token_issued(self.GRANT_TYPE)
        events.record(events.TOKEN_ISSUED, subject=family.account_id, client_id=client.client_id,
                      grant_type=self.GRANT_TYPE)
        return 200, token, self.TOKEN_RESPONSE_HEADER
