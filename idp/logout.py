"""Ending an SSO session everywhere it reached: refresh tokens, back-channel notices, the audit trail."""
from __future__ import annotations

from idp import backchannel, events
from idp.clients import RegisteredClient
from idp.core import Core


def propagate_logout(core: Core, account_id: str, sid: str) -> list[RegisteredClient]:
    """After the session `sid` has ended: revoke what it bound, queue back-channel logouts, audit.

    Returns the clients that took part in the session (front-channel logout shows them iframes).
    """
    participants, grants = core.sessions.take_participants(sid)
    clients = [c for c in map(core.clients.get, sorted(participants)) if c is not None]
    revoked = core.refresh.revoke_session(sid)  # session-bound families and their access tokens
    for grant_id in grants:  # access tokens of grants with no refresh family, or an offline one, live on:
        if not core.refresh.offline(grant_id):  # the session's own grants end with it
            core.issuer.revoke_grant(grant_id)
    queued = backchannel.enqueue(core, clients, account_id, sid)
    events.record(events.LOGOUT, subject=account_id, clients=[c.client_id for c in clients],
                  refresh_families_revoked=revoked, backchannel_queued=queued)
    return clients
