"""Remembered consent per person and client: a later request for the same scopes needs no prompt."""
from __future__ import annotations

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from idp import events
from idp.models import Consent
from idp.models._base import utcnow


class Consents:
    def __init__(self, engine: Engine) -> None:
        self._sessions = sessionmaker(engine, class_=Session, expire_on_commit=False)

    def covers(self, account_id: str, client_id: str, scope: str) -> bool:
        with self._sessions() as session:
            granted = session.execute(select(Consent.scope).where(
                Consent.account_id == account_id, Consent.client_id == client_id)).scalar_one_or_none()
        return granted is not None and set(scope.split()) <= set(granted.split())

    def grant(self, account_id: str, client_id: str, scope: str) -> None:
        for attempt in range(2):
            try:
                self._merge(account_id, client_id, scope)
                break
            except IntegrityError:  # the same first consent given at the same moment (two tabs): merge into it
                if attempt:
                    raise
        events.record(events.CONSENT_GIVEN, subject=account_id, client_id=client_id, scope=scope)

    def _merge(self, account_id: str, client_id: str, scope: str) -> None:
        with self._sessions() as session, session.begin():
            row = session.execute(select(Consent).where(
                Consent.account_id == account_id, Consent.client_id == client_id)).scalar_one_or_none()
            if row is None:
                session.add(Consent(account_id=account_id, client_id=client_id, scope=scope))
            else:
                row.scope = " ".join(sorted(set(row.scope.split()) | set(scope.split())))
                row.updated_at = utcnow()
