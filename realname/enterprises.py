"""Enterprise accounts and the people who may act for them.

An enterprise account is keyed by its unified social credit code and created only from a match
in the legal-entity registry. Its legal representative and authorised agents (经办人) are person
accounts verified at L2 or above, each with a role and a validity period. A person acting for
several enterprises chooses one at login; the tokens then name the enterprise as `sub` and the
person as the actor (`act`, in the spirit of RFC 8693 §4.1), with the enterprise's name and
masked credit code.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from idp import events
from idp.accounts import Profile
from idp.models import Account
from idp.models._base import utcnow
from realname.models import EnterpriseAgent
from realname.pii import CreditCode

if TYPE_CHECKING:
    from idp.clients import RegisteredClient
    from idp.core import Core
    from idp.tokens import Authentication, TokenIssuer

ROLES = ("legal_representative", "agent")
SCOPE = "enterprise"
ENTERPRISE_CLAIM = "urn:yihao:claims:enterprise"
VERIFIED = 2
_AGENTS = EnterpriseAgent.__table__


class EnterpriseError(ValueError):
    """Why an enterprise or an agent cannot be added; the message is for the operator."""


@dataclass(frozen=True)
class Mandate:
    """One enterprise a person may act for, now."""

    enterprise_id: str
    name: str
    credit_code: str  # masked
    role: str


class Enterprises:
    def __init__(self, core: Core) -> None:
        self._core = core

    def create(self, credit_code: CreditCode) -> Profile:
        """The enterprise account for a code the legal-entity registry knows as active."""
        verdict = self._core.entities.lookup(credit_code)
        if verdict.outcome == "unavailable":
            raise EnterpriseError("the legal-entity registry is unavailable; try again later")
        if verdict.outcome != "match" or verdict.name is None:
            raise EnterpriseError("the legal-entity registry does not know this credit code")
        if verdict.status != "active":
            raise EnterpriseError(f"the enterprise is not active in the registry (status {verdict.status})")
        from realname.identity import IdentityTaken

        try:
            return self._core.identities.create_enterprise(credit_code, name=verdict.name, level=VERIFIED,
                                                           source=f"{verdict.source}-legal-entity-registry")
        except IdentityTaken:
            raise EnterpriseError("an enterprise account with this credit code already exists") from None

    def add_agent(self, enterprise_id: str, person_id: str, role: str, *, valid_from: datetime | None = None,
                  valid_until: datetime | None = None) -> None:
        """Allow a verified person to act for a verified enterprise, in `role`, for a period."""
        if role not in ROLES:
            raise EnterpriseError(f"role must be one of {', '.join(ROLES)}")
        enterprise, person = self._core.accounts.get(enterprise_id), self._core.accounts.get(person_id)
        if enterprise is None or enterprise.kind != "enterprise":
            raise EnterpriseError("no such enterprise account")
        if enterprise.assurance_level < VERIFIED:
            raise EnterpriseError("the enterprise is not verified")
        if person is None or person.kind != "person":
            raise EnterpriseError("no such person account")
        if person.assurance_level < VERIFIED:
            raise EnterpriseError("the person is not verified (identity level L2 or above is required)")
        valid_from = valid_from or utcnow()
        if valid_until is not None and valid_until <= valid_from:
            raise EnterpriseError("valid_until must be after valid_from")
        try:
            with self._core.engine.begin() as connection:
                connection.execute(_AGENTS.insert().values(
                    enterprise_id=enterprise_id, person_id=person_id, role=role, valid_from=valid_from,
                    valid_until=valid_until, created_at=utcnow()))
        except IntegrityError:
            raise EnterpriseError("this person already has this role for this enterprise") from None
        events.record(events.AGENT_ADDED, subject=enterprise_id, actor=person_id, role=role)

    def mandates(self, person_id: str, at: datetime | None = None) -> list[Mandate]:
        """The enterprises this person may act for at `at` (now), by name."""
        at = at or utcnow()
        query = (select(_AGENTS.c.enterprise_id, _AGENTS.c.role, Account.name)
                 .join(Account, Account.id == _AGENTS.c.enterprise_id)
                 .where(_AGENTS.c.person_id == person_id, _AGENTS.c.valid_from <= at, Account.status == "active",
                        or_(_AGENTS.c.valid_until.is_(None), _AGENTS.c.valid_until > at))
                 .order_by(Account.name, _AGENTS.c.role))
        with self._core.engine.connect() as connection:
            rows = connection.execute(query).all()
        seen: dict[str, Mandate] = {}
        for row in rows:  # one line per enterprise: the legal representative role first
            code = self._core.identities.credit_code(row.enterprise_id)
            mandate = Mandate(row.enterprise_id, row.name or "", code.masked if code else "", row.role)
            if row.enterprise_id not in seen or row.role == "legal_representative":
                seen[row.enterprise_id] = mandate
        return list(seen.values())

    def mandate(self, person_id: str, enterprise_id: str) -> Mandate | None:
        return next((m for m in self.mandates(person_id) if m.enterprise_id == enterprise_id), None)

    def id_token_claims(self, issuer: TokenIssuer, client: RegisteredClient, auth: Authentication) -> dict[str, Any]:
        """The enterprise's name, masked credit code and the person's role, when the mandate still holds."""
        mandate = self.mandate(auth.account_id, auth.acting_for or "")
        if mandate is None:
            return {}
        return {ENTERPRISE_CLAIM: {"name": mandate.name, "credit_code": mandate.credit_code, "role": mandate.role}}


def wants_enterprise(scope: str, client: RegisteredClient) -> bool:
    """The client asked to know which enterprise the person acts for, and may."""
    return SCOPE in scope.split() and SCOPE in client.allowed_scopes

