"""The audit-event catalogue and `record()`: every security-relevant act, masked details only."""
from __future__ import annotations

import contextvars
import logging
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from idp.middleware.request_id import request_id_var
from idp.models import AuditEvent

log = logging.getLogger("yihao.audit")
address_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("client_address", default=None)

# The catalogue. Names are stable: exports and alerts depend on them.
LOGIN_SUCCEEDED = "login.succeeded"
LOGIN_FAILED = "login.failed"
LOGOUT = "logout"
LOGOUT_DELIVERED = "logout.backchannel_delivered"
LOGOUT_DELIVERY_FAILED = "logout.backchannel_failed"  # given up after the last attempt
CONSENT_GIVEN = "consent.given"
CONSENT_DENIED = "consent.denied"
TOKEN_ISSUED = "token.issued"
CODE_REUSED = "code.reused"
REFRESH_TOKEN_REUSED = "refresh_token.reused"
TOKEN_REVOKED = "token.revoked"
ACCOUNT_CREATED = "account.created"
PASSWORD_REHASHED = "account.password_rehashed"
CLIENT_CREATED = "client.created"
KEYS_ROTATED = "keys.rotated"
PII_REVEALED, PII_REWRAPPED, REGISTRY_IMPORTED = "pii.revealed", "pii.rewrapped", "registry.imported"

_sessions: sessionmaker[Session] | None = None


def configure(engine: Engine | None) -> None:
    """Send records to this database (None: records are only logged)."""
    global _sessions
    _sessions = sessionmaker(engine, class_=Session) if engine is not None else None


def record(event: str, *, outcome: str = "success", subject: str | None = None, client_id: str | None = None,
           actor: str | None = None, **details: Any) -> None:
    """Write one audit record. `details` must hold masked values only (never an ID number)."""
    row = AuditEvent(event=event, outcome=outcome, actor=actor, subject=subject, client_id=client_id,
                     address=address_var.get(), request_id=request_id_var.get(), details=details)
    log.info("audit", extra={"event": event, "outcome": outcome, "subject": subject, "client_id": client_id})
    if _sessions is None:
        return
    try:
        with _sessions() as session, session.begin():
            session.add(row)
    except Exception:  # never lose it silently: the log line above and this error both remain
        log.exception("audit record could not be written", extra={"event": event})
