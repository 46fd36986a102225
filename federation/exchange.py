"""Subject, actor and assertion tokens a partner presents (RFC 8693, RFC 7523), checked as Keycloak's
external exchange did not: signature, issuer, audience, expiry and replay, under the partner's rule.

A token from an upstream must be signed with its published keys under an allowed algorithm, name the
upstream as `iss` and this provider (issuer or token endpoint) in `aud`, be unexpired, carry a `jti`
that has not been seen before (single use on every worker, remembered until the token expires), and
have a `sub` linked to an account here. A token from Yihao itself (only for a partner whose rule names
"self") is one of our access tokens or ID tokens: signed with our keys under the type it claims to be,
ours, unexpired, not revoked (the token, or the grant it came from), issued to the partner or to a
client its rule names, meant for this provider or the partner (an access token; an ID token is meant
for the client it was issued to), and single use like an upstream's. Its `sub` may be pairwise, for
another client: the account comes from the sealed reference the token carries, never from `sub`.
"""
from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from authlib.oauth2.rfc6749.errors import InvalidGrantError, InvalidRequestError

from federation.partners import SELF, TOKEN_TYPES, Rule
from federation.upstream import UpstreamConfig, UpstreamError, check_claims
from idp.authn.acr import AcrValues
from idp.crypto import digest
from idp.store.ephemeral import EphemeralStore
from idp.tokens import TokenIssuer, audience
from idp.untrusted import parse_json

if TYPE_CHECKING:
    from federation import Federation

ACCESS_TOKEN = TOKEN_TYPES["access_token"]
ID_TOKEN = TOKEN_TYPES["id_token"]
JWT = TOKEN_TYPES["jwt"]
LEEWAY = 60


@dataclass(frozen=True)
class Presented:
    """Who a presented token speaks for: an account here (or, for an actor, just who it names)."""

    issuer: str
    subject: str  # the token's own `sub`
    account_id: str | None
    auth_time: int
    strength: int  # how strongly the issuer authenticated the person, on our scale (acr = min with identity level)


def _unverified_issuer(token: str) -> str:
    """`iss` read before verification, only to choose whose keys verify the token."""
    try:
        payload = token.split(".")[1]
        value = parse_json(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        raise InvalidGrantError("the token is not a JWT") from None
    issuer = value.get("iss") if isinstance(value, dict) else None
    if not isinstance(issuer, str):
        raise InvalidGrantError("the token has no iss")
    return issuer


class Tokens:
    """Validates the tokens partners present."""

    def __init__(self, issuer: TokenIssuer, federation: Federation, store: EphemeralStore, acr: AcrValues) -> None:
        self.tokens, self.federation, self.store, self.acr = issuer, federation, store, acr
        self.issuer = issuer.issuer
        self.audiences = (self.issuer, self.issuer + "/token")

    def subject(self, token: str, token_type: str, rule: Rule, client_id: str, *, role: str = "subject",
                issuers: frozenset[str] | None = None) -> Presented:
        if token_type not in TOKEN_TYPES.values():
            raise InvalidRequestError(f"{role}_token_type is not supported")
        if role == "subject" and token_type not in rule.token_types:
            raise InvalidRequestError(f"{role}_token_type is not allowed for this client")
        allowed = rule.subject_issuers if issuers is None else issuers
        iss = _unverified_issuer(token)
        if iss == self.issuer:
            if SELF not in allowed:
                raise InvalidGrantError(f"the {role} token's issuer is not trusted for this client")
            return self._ours(token, token_type, rule, role)
        upstream = self.federation.upstreams.by_issuer(iss)
        if upstream is None or iss not in allowed:
            raise InvalidGrantError(f"the {role} token's issuer is not trusted for this client")
        return self.upstream(upstream, token, role=role)

    def _ours(self, token: str, token_type: str, rule: Rule, role: str) -> Presented:
        """One of our access tokens or ID tokens, as the module docstring says."""
        if token_type == ACCESS_TOKEN:
            found = self.tokens.read_access_token(token)
            if found is None:
                raise InvalidGrantError(f"the {role} token is not a valid, unexpired, unrevoked access token "
                                        "of this provider")
            claims, account_id = found
            issued_to = str(claims.get("client_id"))
            if not set(audience(claims)) & {*self.audiences, rule.client_id}:
                raise InvalidGrantError(f"the {role} token's audience is neither this provider nor this client")
        elif token_type == ID_TOKEN:
            found_id = self.tokens.read_own_id_token(token)
            if found_id is None:
                raise InvalidGrantError(f"the {role} token is not a valid, unexpired ID token of this provider")
            claims, account_id = found_id
            issued_to = str(claims.get("azp") or claims.get("aud"))
        else:
            raise InvalidRequestError(f"a {role} token issued by this provider is an access token or an ID token")
        if not rule.may_present(issued_to):
            raise InvalidGrantError(f"the {role} token was issued to a client whose tokens this client may not present")
        if role == "subject" and account_id is None:
            raise InvalidGrantError("the subject token is a client's own token, not a person's")
        self._once(self.issuer, claims, role)
        return Presented(self.issuer, str(claims["sub"]), account_id, int(claims.get("auth_time", claims["iat"])),
                         self.acr.rank(str(claims.get("acr"))) or 1)

    def _once(self, issuer: str, claims: dict[str, Any], role: str) -> None:
        """Single use on every worker, remembered until the token could no longer be accepted anyway."""
        if not isinstance(claims.get("jti"), str) or not 0 < len(claims["jti"]) <= 255:
            raise InvalidGrantError(f"the {role} token has no jti, so its replay could not be detected")
        key = f"xchg:jti:{digest(issuer + ' ' + claims['jti'])}"
        if not self.store.add(key, b"1", ttl=max(1, int(claims["exp"]) - int(time.time()) + LEEWAY)):
            raise InvalidGrantError(f"the {role} token was already used")

    def upstream(self, upstream: UpstreamConfig, token: str, *, role: str) -> Presented:
        upstreams = self.federation.upstreams
        try:
            claims = upstreams.verify(upstream, token)
            check_claims(claims, issuer=upstream.issuer, audience=self.audiences)
        except UpstreamError as exc:
            raise InvalidGrantError(f"the {role} token: {exc.description}") from None
        now = int(time.time())
        if claims["exp"] <= now:
            raise InvalidGrantError(f"the {role} token has expired")
        self._once(str(upstream.issuer), claims, role)
        account_id = self.federation.links.find(upstream.slug, claims["sub"])
        strength = self.acr.rank(upstream.acr_map.get(str(claims.get("acr")), "")) or 1
        return Presented(upstream.issuer, claims["sub"], account_id, int(claims.get("auth_time", claims["iat"])),
                         strength)
