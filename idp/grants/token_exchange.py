"""OAuth 2.0 Token Exchange (RFC 8693) for partner apps, and what the JWT bearer grant shares with it.

A partner presents a subject token from an issuer its rule trusts and gets a Yihao access token for
an audience and scopes its rule allows; with an `actor_token` the new token says who acts for whom
(`act`, RFC 8693 §4.1). The presented tokens are checked by federation.exchange.
"""
from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc6749 import BaseGrant, TokenEndpointMixin
from authlib.oauth2.rfc6749.errors import (InvalidGrantError, InvalidRequestError, InvalidScopeError,
                                           UnauthorizedClientError)
from authlib.oauth2.rfc6749.util import list_to_scope, scope_to_list

from federation.exchange import ACCESS_TOKEN, Presented
from federation.partners import Rule
from idp import events
from idp.accounts import may_sign_in
from idp.clients import CONFIDENTIAL_METHODS
from idp.grants.common import InvalidTargetError, shown
from idp.metrics import token_issued
from idp.tokens import Authentication

AMR = ("fed",)


class PartnerGrant(BaseGrant, TokenEndpointMixin):
    """A grant for partner clients: confidential, with the grant type registered and a partner rule."""

    TOKEN_ENDPOINT_AUTH_METHODS = list(CONFIDENTIAL_METHODS)  # signed-JWT clients too (RFC 7523 §2.2)

    def _partner(self) -> Rule:
        client = self.authenticate_token_endpoint_client()
        if not client.check_grant_type(self.GRANT_TYPE):
            raise UnauthorizedClientError(f"the client may not use grant_type={self.GRANT_TYPE}")
        rule = self.server.partners.get(client.client_id)
        if rule is None:
            raise UnauthorizedClientError("the client has no partner rule")
        self.request.client = client
        return rule

    def _target(self, rule: Rule) -> tuple[str, str]:
        """The audience and scope asked for, each within the partner's rule (RFC 8693 §2.1)."""
        form = self.request.form
        wanted = form.get("audience") or form.get("resource") or (rule.audiences[0] if rule.audiences else None)
        if wanted is None or wanted not in rule.audiences:
            raise InvalidTargetError(f"audience {shown(wanted)} is not one this client may ask tokens for")
        scopes = scope_to_list(form.get("scope")) or []
        if set(scopes) - rule.scopes:
            raise InvalidScopeError("a requested scope is not one this client may ask for")
        return wanted, list_to_scope(scopes) if scopes else ""

    def _issue(self, subject: Presented, target: str, scope: str, actor: Presented | None) -> tuple[int, Any, list]:
        if subject.account_id is None:
            raise InvalidGrantError("the subject is not linked to an account here")
        profile = self.server.accounts.get(subject.account_id)
        if not may_sign_in(profile):
            raise InvalidGrantError("the subject's account cannot be used")
        client = self.request.client
        # acr = min(identity level, authentication strength)
        acr = self.server.partner_tokens.acr.achieved(profile.assurance_level, subject.strength)
        auth = Authentication(account_id=subject.account_id, auth_time=subject.auth_time, amr=AMR, acr=acr, sid="")
        extra = {"act": {"sub": actor.subject, "iss": actor.issuer}} if actor is not None else None
        # The person's `sub` is the one the audience knows them by when it is a client here (pairwise per
        # sector, OIDC Core §8.1), else the partner's: never the presented token's, which may be another's.
        audience_client = self.server.query_client(target)
        access_token, ttl = self.server.issuer.access_token(client, auth, scope, target, extra=extra,
                                                            subject_client=audience_client)
        token: dict[str, Any] = {"access_token": access_token, "issued_token_type": ACCESS_TOKEN,
                                 "token_type": "Bearer", "expires_in": ttl}
        if scope:
            token["scope"] = scope
        token_issued(self.GRANT_TYPE)
        events.record(events.TOKEN_ISSUED, subject=subject.account_id, client_id=client.client_id,
                      grant_type=self.GRANT_TYPE, subject_issuer=subject.issuer, audience=target,
                      **({"actor": actor.subject, "actor_issuer": actor.issuer} if actor else {}))
        return 200, token, self.TOKEN_RESPONSE_HEADER


class TokenExchangeGrant(PartnerGrant):
    GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"

    def validate_token_request(self) -> None:
        rule = self._partner()
        form = self.request.form
        for name in ("subject_token", "subject_token_type"):
            if not form.get(name):
                raise InvalidRequestError(f"{name} is required")
        if form.get("requested_token_type") not in (None, ACCESS_TOKEN):
            raise InvalidRequestError("requested_token_type must be urn:ietf:params:oauth:token-type:access_token")
        if form.get("actor_token") and not form.get("actor_token_type"):
            raise InvalidRequestError("actor_token_type is required with actor_token")  # RFC 8693 §2.1
        if form.get("actor_token_type") and not form.get("actor_token"):
            raise InvalidRequestError("actor_token_type without actor_token")
        self._target_scope = self._target(rule)
        client_id = self.request.client.client_id
        self._subject = self.server.partner_tokens.subject(form["subject_token"], form["subject_token_type"],
                                                           rule, client_id)
        self._actor = None
        if form.get("actor_token"):
            if not rule.actor_issuers:
                raise InvalidRequestError("this client may not act for others (no actor token issuers)")
            self._actor = self.server.partner_tokens.subject(form["actor_token"], form["actor_token_type"], rule,
                                                             client_id, role="actor", issuers=rule.actor_issuers)

    def create_token_response(self) -> tuple[int, Any, list]:
        target, scope = self._target_scope
        return self._issue(self._subject, target, scope, self._actor)
