"""The authorization_code grant (RFC 6749 §4.1) with PKCE S256 and OpenID Connect ID tokens."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import InvalidGrantError, InvalidRequestError
from authlib.oauth2.rfc7636 import CodeChallenge

from idp import events
from idp.crypto import digest
from idp.grants.common import ClientScopes, requested_resources, token_audience
from idp.metrics import TOKENS_ISSUED
from idp.store.ephemeral import EphemeralStore, put_json, take_json
from idp.tokens import Authentication

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IssuedCode:
    client_id: str
    redirect_uri: str | None
    scope: str
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    auth: Authentication
    resources: tuple[str, ...] = ()

    def get_redirect_uri(self) -> str | None:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope


def code_key(code: str) -> str:
    return f"code:{digest(code)}"


class AuthorizationCodeGrant(ClientScopes, grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]
    AUTHORIZATION_CODE_LENGTH = 43  # ~256 bits

    store: EphemeralStore  # set by the server factory
    code_ttl: int
    reuse_ttl: int  # how long a spent code is remembered: the life of what it issued

    def validate_authorization_request(self) -> Any:
        redirect_uri = super().validate_authorization_request()
        requested_resources(self.request.client, self.request.payload.datalist.get("resource", ()))
        return redirect_uri

    def save_authorization_code(self, code: str, request: Any) -> None:
        data = request.payload.data
        put_json(self.store, code_key(code), {
            "c": request.client.client_id, "r": data.get("redirect_uri"), "s": request.scope,
            "n": data.get("nonce"), "cc": data.get("code_challenge"), "cm": data.get("code_challenge_method"),
            "auth": request.user.to_json(),
            "rs": list(requested_resources(request.client, request.payload.datalist.get("resource", ()))),
        }, ttl=self.code_ttl)

    def query_authorization_code(self, code: str, client: Any) -> IssuedCode | None:
        # Single use by construction: the code is taken (atomic get-and-delete) before anything else.
        data = take_json(self.store, code_key(code))
        if data is None:
            self._on_unknown_code(code, client)
            return None
        auth = Authentication.from_json(data["auth"])
        # Remembered past the code's life so that a second use can revoke what the first issued.
        self.store.put(f"code:used:{digest(code)}", auth.grant_id.encode(), ttl=self.reuse_ttl)
        if data["c"] != client.client_id:
            return None  # bound to the client it was issued to (and now spent)
        return IssuedCode(data["c"], data["r"], data["s"], data["n"], data["cc"], data["cm"], auth,
                          tuple(data.get("rs", ())))

    def _on_unknown_code(self, code: str, client: Any) -> None:
        # RFC 6749 §4.1.2 / RFC 9700 §4.5: a reused code revokes the tokens issued with it.
        grant_id = self.store.take(f"code:used:{digest(code)}")
        if grant_id is not None:
            self.server.refresh.revoke_family(grant_id.decode())  # and its access tokens
            events.record(events.CODE_REUSED, outcome="failure", client_id=client.client_id)

    def delete_authorization_code(self, authorization_code: IssuedCode) -> None:
        """Nothing to do: the code was taken from the store when it was read."""

    def authenticate_user(self, authorization_code: IssuedCode) -> Authentication:
        return authorization_code.auth

    def create_authorization_response(self, redirect_uri: str, grant_user: Authentication) -> tuple[int, Any, list]:
        self.request.user = grant_user
        code = self.generate_authorization_code()
        self.save_authorization_code(code, self.request)
        return 200, {"code": code}, []

    def create_token_response(self) -> tuple[int, Any, list]:
        client = self.request.client
        issued: IssuedCode = self.request.authorization_code
        scopes = issued.scope.split()
        audience = token_audience(client, issued.resources, self.request.form.get("resource"))
        access_token, ttl = self.server.issuer.access_token(client, issued.auth, issued.scope, audience)
        token: dict[str, Any] = {"access_token": access_token, "token_type": "Bearer", "expires_in": ttl}
        if issued.scope:
            token["scope"] = issued.scope
        offline = "offline_access" in scopes
        if client.check_grant_type("refresh_token") and (offline or client.session_refresh_tokens):
            token["refresh_token"] = self.server.refresh.issue(client.client_id, issued.auth, issued.scope,
                                                               issued.resources, offline)
        if "openid" in scopes:
            token["id_token"] = self.server.issuer.id_token(client, issued.auth, nonce=issued.nonce,
                                                             access_token=access_token,
                                                             extra=self.server.requested_id_token_claims(client, issued.auth)
                                                             | self.server.downstream_claims(client, issued.auth))
        TOKENS_ISSUED.labels(grant_type=self.GRANT_TYPE).inc()
        events.record(events.TOKEN_ISSUED, subject=issued.auth.account_id, client_id=client.client_id,
                      grant_type=self.GRANT_TYPE)
        return 200, token, self.TOKEN_RESPONSE_HEADER


class PkceS256(CodeChallenge):
    """RFC 7636 with only S256 (RFC 9700 §2.1.1), and required of public clients at /authorize."""

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        # RFC 7636 §4.3: a challenge without a method is "plain", which is refused like an explicit one
        method = data.get("code_challenge_method", "plain" if data.get("code_challenge") else "S256")
        if method != "S256":
            raise InvalidRequestError("code_challenge_method must be S256")
        if grant.request.client.public and not data.get("code_challenge"):
            raise InvalidRequestError("code_challenge (PKCE, S256) is required for public clients")
        super().validate_code_challenge(grant, redirect_uri)

    def validate_code_verifier(self, grant: Any, result: Any) -> None:
        try:
            super().validate_code_verifier(grant, result)
        except InvalidGrantError:
            raise InvalidGrantError("code_verifier does not match the code_challenge") from None
