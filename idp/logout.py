"""Ending an SSO session everywhere it reached: refresh tokens, back-channel notices, the audit trail."""
from __future__ import annotations

from sqlalchemy import Engine, false, select, update
from sqlmodel import Session

from idp import backchannel, events
from idp.clients import RegisteredClient
from idp.core import Core
from idp.models import RefreshToken
from idp.models._base import utcnow
from idp.tokens import TokenIssuer


def revoke_session_refresh_tokens(engine: Engine, issuer: TokenIssuer, sid: str) -> int:
    """Revoke the session's refresh tokens that are not offline_access, and their access tokens."""
    bound = (RefreshToken.sid == sid, RefreshToken.offline == false(), RefreshToken.revoked_at.is_(None))
    with Session(engine) as session, session.begin():
        families = set(session.scalars(select(RefreshToken.family_id).where(*bound)))
        session.execute(update(RefreshToken).where(*bound).values(revoked_at=utcnow()))
    for family in families:  # a family id is the `gid` of the access tokens issued with it
        issuer.revoke_grant(family)
    return len(families)


def propagate_logout(core: Core, account_id: str, sid: str) -> list[RegisteredClient]:
    """After the session `sid` has ended: revoke what it bound, queue back-channel logouts, audit.

    Returns the clients that took part in the session (front-channel logout shows them iframes).
    """
    clients = [c for c in map(core.clients.get, sorted(core.sessions.take_participants(sid))) if c is not None]
    revoked = revoke_session_refresh_tokens(core.engine, core.issuer, sid)
    queued = backchannel.enqueue(core, clients, account_id, sid)
    events.record(events.LOGOUT, subject=account_id, clients=[c.client_id for c in clients],
                  refresh_families_revoked=revoked, backchannel_queued=queued)
    return clients
