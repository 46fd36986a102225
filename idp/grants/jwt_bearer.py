"""The JWT bearer authorization grant (RFC 7523 §2.1): a partner holding an assertion about a person
from an issuer its rule trusts gets a Yihao access token for them, under the same checks and rule
as a token exchange."""
from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc6749.errors import InvalidRequestError

from federation.exchange import JWT
from federation.partners import SELF
from idp.grants.token_exchange import PartnerGrant


class JwtBearerGrant(PartnerGrant):
    GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"

    def validate_token_request(self) -> None:
        rule = self._partner()
        assertion = self.request.form.get("assertion")
        if not assertion:
            raise InvalidRequestError("assertion is required")  # RFC 7523 §2.1
        self._target_scope = self._target(rule)
        # RFC 7523 §3: iss, sub, aud (us), exp; and a jti, so a replay is refused
        self._subject = self.server.partner_tokens.subject(assertion, JWT, rule, self.request.client.client_id,
                                                           role="assertion", issuers=rule.subject_issuers - {SELF})

    def create_token_response(self) -> tuple[int, Any, list]:
        target, scope = self._target_scope
        return self._issue(self._subject, target, scope, None)
