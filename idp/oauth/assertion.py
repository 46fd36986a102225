"""Client authentication with a signed JWT (RFC 7523 §2.2 and §3, OIDC Core §9): `private_key_jwt`
(the client's registered public keys) and `client_secret_jwt` (HMAC with its secret).

Built on authlib's `JWTBearerClientAssertion`: its unverified read of the assertion and its
per-client method check; the verification is ours because it must be stricter — only the client's
registered algorithm, its key chosen by `kid` (a rotated key set is fetched again), `exp` at most
five minutes ahead, `iat` required, and `jti` single use across every worker (the ephemeral store).
"""
from __future__ import annotations

import time
from typing import Any

from authlib.oauth2.rfc6749 import InvalidClientError, OAuth2Request
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from authlib.oauth2.rfc7523.client import ASSERTION_TYPE
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import Key, OctKey

from idp import events
from idp.client_keys import ASYMMETRIC_ALGS, HMAC_ALGS, ClientKeys, NoKey
from idp.clients import ClientRegistry, RegisteredClient
from idp.crypto import digest
from idp.store.ephemeral import EphemeralStore

MAX_LIFETIME = 300  # seconds an assertion may be valid ahead; a longer-lived one is a replayable credential
LEEWAY = 30  # clock skew allowed between the client and us


def numeric(claims: dict[str, Any], name: str) -> float | None:
    value = claims.get(name)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def audience_ok(aud: Any, accepted: set[str]) -> bool:
    """RFC 7523 §3: `aud` (a string or an array) identifies this server."""
    values = aud if isinstance(aud, list) else [aud]
    return any(isinstance(v, str) and v in accepted for v in values)


class ClientAssertion(JWTBearerClientAssertion):
    """One JWT client-authentication method; subclasses say which algorithms and which key."""

    CLIENT_AUTH_METHOD = ""
    ALGS: tuple[str, ...] = ()

    def __init__(self, clients: ClientRegistry, keys: ClientKeys, store: EphemeralStore, issuer: str) -> None:
        super().__init__(validate_jti=True, leeway=LEEWAY)
        self.clients, self.keys, self.store, self.issuer = clients, keys, store, issuer

    def handles(self, alg: Any) -> bool:
        raise NotImplementedError

    def key(self, client: RegisteredClient, header: dict[str, Any]) -> Key:
        raise NotImplementedError

    def __call__(self, query_client: Any, request: OAuth2Request) -> RegisteredClient | None:
        form = request.form
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            return None
        try:
            header, unverified = self.extract_assertion(form.get("client_assertion") or "")
        except RecursionError:  # JSON nested too deeply for the parser (authlib catches ValueError only)
            raise InvalidClientError(description="client_assertion is not a valid JWT") from None
        alg = header.get("alg")
        if not self.handles(alg):
            return None  # the other JWT method's
        client_id = unverified.get("sub")
        if not isinstance(client_id, str) or not client_id:
            raise InvalidClientError(description="client_assertion must name the client in sub")
        if form.get("client_id") not in (None, client_id):  # RFC 7523 §3: the same client, if named twice
            raise InvalidClientError(description="client_id does not match the client_assertion's sub")
        client = query_client(client_id)
        if client is None:
            raise InvalidClientError(description="The client does not exist on this server.")
        if client.token_endpoint_auth_method != self.CLIENT_AUTH_METHOD:
            raise InvalidClientError(description=f"the client is registered for {client.token_endpoint_auth_method},"
                                                 f" not {self.CLIENT_AUTH_METHOD}")
        allowed = (client.token_endpoint_auth_signing_alg,) if client.token_endpoint_auth_signing_alg else self.ALGS
        if alg not in allowed:
            raise InvalidClientError(description=f"client_assertion alg must be {' or '.join(allowed)}")
        try:
            claims = jwt.decode(form["client_assertion"], self.key(client, header), algorithms=[alg]).claims
        except NoKey as exc:
            raise InvalidClientError(description=f"client_assertion cannot be verified: {exc}") from None
        except (JoseError, RecursionError):
            raise InvalidClientError(description="client_assertion signature does not verify") from None
        self.check_claims(claims, client_id, {self.issuer, self.issuer + "/token", request.uri})
        request.client = client
        return self.authenticate_client(client)

    def check_claims(self, claims: dict[str, Any], client_id: str, audiences: set[str]) -> None:
        """RFC 7523 §3; the single use of `jti` is recorded only once everything else holds."""
        now = time.time()
        if claims.get("iss") != client_id:
            raise InvalidClientError(description="client_assertion iss and sub must both be the client_id")
        if not audience_ok(claims.get("aud"), audiences):
            raise InvalidClientError(description="client_assertion aud must be the issuer or the token endpoint")
        exp, iat, nbf = numeric(claims, "exp"), numeric(claims, "iat"), numeric(claims, "nbf")
        if exp is None or iat is None:
            raise InvalidClientError(description="client_assertion must carry exp and iat")
        if exp + LEEWAY < now:
            raise InvalidClientError(description="client_assertion has expired")
        if exp > now + MAX_LIFETIME + LEEWAY:
            raise InvalidClientError(description=f"client_assertion exp must be at most {MAX_LIFETIME} seconds ahead")
        if iat > now + LEEWAY or (nbf is not None and nbf > now + LEEWAY):
            raise InvalidClientError(description="client_assertion is not valid yet")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti or len(jti) > 256:
            raise InvalidClientError(description="client_assertion must carry a jti")
        if not self.store.add(f"jti:{digest(client_id)}:{digest(jti)}", b"1", ttl=max(1.0, exp + LEEWAY - now)):
            events.record(events.CLIENT_ASSERTION_REPLAYED, outcome="failure", client_id=client_id)
            raise InvalidClientError(description="client_assertion jti has already been used")


class PrivateKeyJwt(ClientAssertion):
    CLIENT_AUTH_METHOD = "private_key_jwt"
    ALGS = ASYMMETRIC_ALGS

    def handles(self, alg: Any) -> bool:
        return alg not in HMAC_ALGS  # and so answers for every alg that is not HMAC, refusing the unknown

    def key(self, client: RegisteredClient, header: dict[str, Any]) -> Key:
        kid = header.get("kid")
        return self.keys.key(client, kid if isinstance(kid, str) else None, header["alg"])


class ClientSecretJwt(ClientAssertion):
    CLIENT_AUTH_METHOD = "client_secret_jwt"
    ALGS = HMAC_ALGS

    def handles(self, alg: Any) -> bool:
        return alg in HMAC_ALGS

    def key(self, client: RegisteredClient, header: dict[str, Any]) -> Key:
        secret = self.clients.jwt_secret(client)
        if secret is None:
            raise NoKey("the client has no secret")
        return OctKey.import_key(secret)
