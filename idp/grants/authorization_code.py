"""The authorization_code grant (RFC 6749 §4.1) with PKCE S256 and OpenID Connect ID tokens."""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import InvalidGrantError, InvalidRequestError
from authlib.oauth2.rfc7636 import CodeChallenge

from idp import events
from idp.clients import AUTH_METHODS
from idp.crypto import digest
from idp.grants.common import ClientScopes, person_tokens, requested_resources
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
    dpop_jkt: str | None = None

    def get_redirect_uri(self) -> str | None:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope


def code_key(code: str) -> str:
    return f"code:{digest(code)}"


class AuthorizationCodeGrant(ClientScopes, grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = [*AUTH_METHODS, "tls_client_auth"]
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
            **({"k": data["dpop_jkt"]} if data.get("dpop_jkt") else {}),
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
                          tuple(data.get("rs", ())), data.get("k"))

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
        issued: IssuedCode = self.request.authorization_code
        # RFC 9449 §10: a code requested with dpop_jkt is redeemed only with a proof of that key
        if issued.dpop_jkt is not None and issued.dpop_jkt != self.request.dpop_jkt:
            raise InvalidGrantError("the authorization code is bound to another DPoP key (dpop_jkt)")
        token = person_tokens(self, issued.auth, issued.scope, issued.resources, issued.nonce)
        return 200, token, self.TOKEN_RESPONSE_HEADER


CHALLENGE = re.compile(r"[A-Za-z0-9\-._~]{43,128}")


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
        # RFC 7636 §4.2: 43 to 128 unreserved characters (authlib's pattern lets a final newline through)
        if data.get("code_challenge") is not None and not CHALLENGE.fullmatch(data["code_challenge"]):
            raise InvalidRequestError("code_challenge must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~")
        super().validate_code_challenge(grant, redirect_uri)

    def validate_code_verifier(self, grant: Any, result: Any) -> None:
        try:
            super().validate_code_verifier(grant, result)
        except InvalidGrantError:
            raise InvalidGrantError("code_verifier does not match the code_challenge") from None
