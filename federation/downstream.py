"""Yihao as the upstream of another provider: the verified ID number, released only to a client an
administrator made a downstream identity provider (`partner_rule.release_identity`).

It travels as OpenID Connect for Identity Assurance `verified_claims` in the ID token, so the
downstream links on it only where it trusts us for it. Every release is audited (masked).
"""
from __future__ import annotations

from typing import Any

from federation.partners import Partners
from idp import events
from idp.clients import RegisteredClient
from realname.identity import Identities

TRUST_FRAMEWORK = "cn_yihao"


class Downstream:
    def __init__(self, partners: Partners, identities: Identities) -> None:
        self._partners, self._identities = partners, identities

    def id_token_claims(self, client: RegisteredClient, account_id: str) -> dict[str, Any]:
        rule = self._partners.get(client.client_id)
        if rule is None or not rule.release_identity:
            return {}
        number = self._identities.id_number(account_id)
        if number is None:
            return {}
        level = self._identities.level(account_id)
        # the audit trail holds the account id, never the number (not even masked)
        events.record(events.PII_REVEALED, subject=account_id, client_id=client.client_id, purpose="federation")
        return {"verified_claims": {"verification": {"trust_framework": TRUST_FRAMEWORK, "assurance_level": f"L{level}"},
                                    "claims": {"id_number": number.reveal()}}}
