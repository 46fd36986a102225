"""authlib's AuthorizationServer bound to Yihao's client registry, token issuer and store."""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from authlib.oauth2.rfc6749 import AuthorizationServer, OAuth2Request, UnsupportedGrantTypeError

from idp import events, verified_claims
from idp.clients import ClientRegistry, RegisteredClient
from idp.grants.common import InvalidDPoPProofError
from idp.oauth.requests import OAuthRequest
from idp.claims import ID_NUMBER_ITEM, release
from idp.tokens import Authentication, TokenIssuer

if TYPE_CHECKING:
    from federation.exchange import Tokens
    from federation.partners import Partners
    from idp.accounts import Accounts
    from idp.consents import Consents
    from idp.refresh import RefreshTokens
    from realname.enterprises import Enterprises
    from realname.verification import Verification

OAuthResponse = tuple[int, Any, list[tuple[str, str]]]


class YihaoServer(AuthorizationServer):
    """The synchronous OAuth core; handlers call it once, in the thread pool."""

    def __init__(self, clients: ClientRegistry, issuer: TokenIssuer) -> None:
        super().__init__()  # scopes are checked per client by the grants
        self.clients = clients
        self.issuer = issuer
        self.refresh: RefreshTokens  # set by build_core
        self.accounts: Accounts  # set by build_core
        self.consents: Consents
        self.verification: Verification
        self.enterprises: Enterprises
        self.trust_framework = "cn_realname"
        self.partners: Partners  # set by build_core: what partner clients may exchange
        self.partner_tokens: Tokens  # set by build_core: checks the tokens partners present

    def requested_id_token_claims(self, client: RegisteredClient, auth: Authentication) -> dict[str, Any]:
        """OIDC Core §5.5: the claims the grant's `claims` request asked for in the ID token, current
        values; verified_claims (OIDC4IDA); who acts for which enterprise."""
        profile = self.accounts.get(auth.account_id) if auth.id_token_claims else None
        out = release(profile, auth.id_token_claims) if profile else {}
        if auth.id_token_verified is not None:
            out.update(self.verified_claims(client, auth.account_id, auth.id_token_verified))
        if auth.acting_for:
            out.update(self.enterprises.id_token_claims(self.issuer, client, auth))
        return out

    def verified_claims(self, client: RegisteredClient, account_id: str, request: Any) -> dict[str, Any]:
        """`{"verified_claims": ...}` for this request, or nothing (IDA §6.5: omitted, never an error).
        The whole ID number only to a client an administrator allowed, after the person consented."""
        record = self.verification.record(account_id)
        whole = (record is not None and client.release_id_number and verified_claims.wants_id_number(request)
                 and self.consents.covers(account_id, client.client_id, ID_NUMBER_ITEM))
        selected = verified_claims.select(request, record, trust_framework=self.trust_framework, whole_id_number=whole)
        if selected is None:
            return {}
        if whole:
            events.record(events.PII_REVEALED, subject=account_id, client_id=client.client_id, reason="verified_claims")
        return {verified_claims.CLAIM: selected}

    def authenticate_client(self, request: OAuth2Request, methods: list[str], endpoint: str = "token") -> Any:
        client = super().authenticate_client(request, methods, endpoint)
        # RFC 9449 §5.2: such a client's token requests without a proof are refused, before any code is spent
        if endpoint == "token" and client.dpop_bound_access_tokens and request.dpop_jkt is None:
            raise InvalidDPoPProofError("this client must send a DPoP proof with every token request")
        return client

    def query_client(self, client_id: str) -> RegisteredClient | None:
        return self.clients.get(client_id)

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        """Access tokens are self-contained JWTs: nothing to store (refresh tokens store themselves)."""

    def get_token_grant(self, request: OAuth2Request) -> Any:
        try:
            return super().get_token_grant(request)
        except UnsupportedGrantTypeError as error:  # authlib leaves the body's description empty
            error.description = error.get_error_description()
            raise

    def create_oauth2_request(self, request: OAuthRequest) -> OAuthRequest:
        return request

    def handle_response(self, status: int, body: Any, headers: list[tuple[str, str]]) -> OAuthResponse:
        return status, body, list(headers)

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """authlib's signals are not used: events are recorded where they happen."""

def json_body(body: Any) -> bytes:
    return body if isinstance(body, bytes) else _COMPACT.encode(body).encode()


_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)  # json.dumps builds one per call
