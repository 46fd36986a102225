"""Server-side SSO sessions: the cookie holds an opaque handle, the store holds the session.

The store key is the handle's digest, so a leaked store dump cannot be replayed as a cookie, and
the `sid` given to relying parties is a separate random value, never the handle.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from idp.crypto import digest, random_token
from idp.settings import Settings
from idp.store.ephemeral import EphemeralStore, get_json, put_json, replace_json


@dataclass(frozen=True)
class SsoSession:
    account_id: str
    auth_time: int
    amr: tuple[str, ...]
    acr: str
    sid: str
    created: int

    def to_json(self, seen: int) -> dict[str, object]:
        return {"a": self.account_id, "t": self.auth_time, "m": list(self.amr), "c": self.acr, "s": self.sid,
                "o": self.created, "v": seen}


def sid_key(sid: str) -> str:
    return f"sid:{sid}"


def participants_key(sid: str) -> str:
    return f"sid-rps:{sid}"


class Sessions:
    def __init__(self, store: EphemeralStore, settings: Settings) -> None:
        self._store = store
        self._idle = settings.session_idle_ttl
        self._max = settings.session_max_ttl
        secure = settings.secure_cookies
        self.cookie = "__Host-yihao_session" if secure else "yihao_session"

    def load(self, handle: str | None) -> SsoSession | None:
        if not handle or len(handle) > 100:
            return None
        key = f"sess:{digest(handle)}"
        data = get_json(self._store, key)
        if not isinstance(data, dict):
            return None
        now = int(time.time())
        session = SsoSession(data["a"], data["t"], tuple(data["m"]), data["c"], data["s"], data["o"])
        if now - session.created >= self._max:
            self._store.delete(key)
            return None
        if now - data["v"] > self._idle // 16:  # slide the idle window without a write per request
            # Only what is still there is extended: a logout that ended the session since it was read
            # must not be undone by this write (SET XX), nor its sid be left alive without it. The sid
            # keeps what it points to: a re-authentication may have moved it to the session's new handle.
            ttl = self._ttl(session, now)
            if not (replace_json(self._store, key, session.to_json(now), ttl=ttl)
                    and self._store.touch(sid_key(session.sid), ttl=ttl)):
                self._store.delete(key)  # ended meanwhile (or its sid was): it stays ended
                return None
        return session

    def create(self, account_id: str, amr: tuple[str, ...], acr: str,
               continuing: SsoSession | None = None) -> tuple[str, SsoSession]:
        """A session under a new handle (no fixation: a login never reuses a handle).

        A re-authentication of the same account (`prompt=login`, `max_age`, step-up) continues the
        session it replaces: same `sid` and start, so relying parties keep their sessions."""
        now = int(time.time())
        handle = random_token(32)
        if continuing is not None and continuing.account_id == account_id:
            session = SsoSession(account_id, now, amr, acr, continuing.sid, continuing.created)
        else:
            session = SsoSession(account_id, now, amr, acr, random_token(16), now)
        key = f"sess:{digest(handle)}"
        ttl = self._ttl(session, now)
        put_json(self._store, key, session.to_json(now), ttl=ttl)
        self._store.put(sid_key(session.sid), key.encode(), ttl=ttl)  # the session by its public sid
        return handle, session

    def replace(self, handle: str | None, account_id: str, amr: tuple[str, ...],
                acr: str) -> tuple[str, SsoSession, SsoSession | None]:
        """A login on a browser that may hold a session: the new handle and session, and the old
        session if it ended (another person's). The same person's re-authentication continues the
        session; its sid never stops being alive in between."""
        old = self.load(handle)
        if old is not None and old.account_id == account_id:
            new_handle, session = self.create(account_id, amr, acr, continuing=old)  # re-points the sid
            self._store.delete(f"sess:{digest(str(handle))}")
            return new_handle, session, None
        ended = self.end(handle)
        new_handle, session = self.create(account_id, amr, acr)
        return new_handle, session, ended

    def end(self, handle: str | None) -> SsoSession | None:
        """End the session behind a cookie handle; returns what it was, if it was alive."""
        if not handle or len(handle) > 100:
            return None
        data = get_json(self._store, f"sess:{digest(handle)}")
        self._store.delete(f"sess:{digest(handle)}")
        if not isinstance(data, dict):
            return None
        self._store.delete(sid_key(data["s"]))
        return SsoSession(data["a"], data["t"], tuple(data["m"]), data["c"], data["s"], data["o"])

    def end_sid(self, sid: str) -> SsoSession | None:
        """End the session with this public sid (a logout told by another provider); what it was, if alive."""
        key = self._store.take(sid_key(sid))
        if key is None:
            return None
        data = get_json(self._store, key.decode())
        self._store.delete(key.decode())
        if not isinstance(data, dict):
            return None
        return SsoSession(data["a"], data["t"], tuple(data["m"]), data["c"], data["s"], data["o"])

    def join(self, sid: str, client_id: str, grant_id: str) -> None:
        """Record that `client_id` received tokens in this session under `grant_id`: the clients to
        notify and the grants to revoke at logout (one set, one write; grant ids hold no space)."""
        self._store.sadd(participants_key(sid), f"{client_id} {grant_id}", ttl=self._max)  # no session outlives _max

    def take_participants(self, sid: str) -> tuple[set[str], set[str]]:
        """The clients that took part in the session and the grants it gave; reading forgets them."""
        pairs = [member.rsplit(" ", 1) for member in self._store.smembers(participants_key(sid))]
        self._store.delete(participants_key(sid))
        return {client for client, _ in pairs}, {grant for _, grant in pairs}

    def alive(self, sid: str | None) -> bool:
        """True while the session with this sid exists; it does not slide the idle window."""
        return bool(sid) and self._store.get(sid_key(str(sid))) is not None

    def _ttl(self, session: SsoSession, now: int) -> float:
        return float(max(1, min(self._idle, session.created + self._max - now)))
