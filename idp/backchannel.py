"""Back-Channel Logout 1.0: an outbox of logout tokens in SQL, sent by one worker thread per process.

A logout writes one `logout_delivery` row per client to tell. The token is signed only when it is
sent, so a retry an hour later still carries a fresh `iat`/`exp` (the `jti` stays the same, so a
relying party can drop duplicates). Rows are claimed by one UPDATE … RETURNING that moves their
`next_attempt_at` a lease into the future: of several processes exactly one claims a row (SQLite
serialises writers; PostgreSQL skips locked rows and re-checks the condition), and a row whose
process died mid-delivery is claimed again when its lease runs out. A client that is down, or a
restart, loses nothing: the row stays pending until it is delivered or given up.
"""
from __future__ import annotations

import logging
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any, Iterable

import httpx
from sqlalchemy import select, update
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from idp import events, jose
from idp.clients import RegisteredClient
from idp.core import Core
from idp.crypto import random_token
from idp.egress import Egress, EgressError
from idp.models import LogoutDelivery
from idp.models._base import aware, utcnow

log = logging.getLogger("yihao.logout")

EVENT = "http://schemas.openid.net/event/backchannel-logout"
TOKEN_TTL = 120  # the token is made at send time, so two minutes is plenty
TIMEOUT = 5.0  # a relying party must answer quickly; a slow one is retried, not waited for
LEASE = timedelta(seconds=60)  # longer than one delivery can take (TIMEOUT), so a live claim never lapses
BATCH = 32
SENDERS = 8  # deliveries in parallel: one slow relying party does not hold up the others


def enqueue(core: Core, clients: Iterable[RegisteredClient], account_id: str, sid: str) -> int:
    """One pending delivery per client with a back-channel logout URI; returns how many."""
    rows = [LogoutDelivery(client_id=c.client_id, uri=c.backchannel_logout_uri, sid=sid, jti=random_token(16),
                           sub=core.issuer.subject(c, account_id))
            for c in clients if c.backchannel_logout_uri]
    if rows:
        with Session(core.engine) as session, session.begin():
            session.add_all(rows)
    return len(rows)


def logout_token(core: Core, client: RegisteredClient, row: LogoutDelivery) -> str:
    """Back-Channel Logout §2.4: signed like the client's ID tokens, typed, never with a nonce."""
    now = int(time.time())
    claims: dict[str, Any] = {"iss": core.settings.issuer, "aud": client.client_id, "iat": now,
                              "exp": now + TOKEN_TTL, "jti": row.jti, "events": {EVENT: {}}}
    claims |= {name: value for name, value in (("sub", row.sub), ("sid", row.sid)) if value}
    key = core.keys.signing_key(client.id_token_signed_response_alg)
    return jose.sign(claims, key, typ="logout+jwt")


GONE = "the client is no longer registered"  # nothing to retry: the delivery fails at once


def retry_delay(attempts: int, base: float, cap: float) -> float:
    """Exponential backoff, capped, with jitter so retries of many rows do not arrive together."""
    delay = min(cap, base * 2 ** min(attempts - 1, 32))
    return delay / 2 + random.uniform(0, delay / 2)


class Outbox:
    """Claims due deliveries and sends them; safe to run in every process at once."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self._sessions = sessionmaker(core.engine, class_=Session)
        self._http = httpx.Client(timeout=TIMEOUT, follow_redirects=False)
        self._egress = Egress.from_settings(core.settings)
        # their audit records go to this provider's table, whichever provider was built last
        self._pool = ThreadPoolExecutor(SENDERS, thread_name_prefix="yihao-logout-send",
                                        initializer=events.use, initargs=(core.audit,))

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self._http.close()

    def deliver_due(self) -> int:
        """Send every claimed due delivery; returns how many were claimed."""
        rows = self._claim()
        list(self._pool.map(self._deliver, rows))
        return len(rows)

    def _claim(self) -> list[LogoutDelivery]:
        now = utcnow()
        due = (select(LogoutDelivery.id)
               .where(LogoutDelivery.status == "pending", LogoutDelivery.next_attempt_at <= now)
               .order_by(LogoutDelivery.next_attempt_at).limit(BATCH)
               .with_for_update(skip_locked=True))  # PostgreSQL; SQLite has one writer anyway
        claim = (update(LogoutDelivery)
                 .where(LogoutDelivery.id.in_(due.scalar_subquery()), LogoutDelivery.status == "pending",
                        LogoutDelivery.next_attempt_at <= now)
                 .values(attempts=LogoutDelivery.attempts + 1, next_attempt_at=now + LEASE)
                 .returning(LogoutDelivery)
                 .execution_options(synchronize_session=False))
        with self._sessions() as session, session.begin():
            rows = list(session.scalars(claim))
            session.expunge_all()
        return rows

    def _deliver(self, row: LogoutDelivery) -> None:
        try:
            error = self._send(row)
        except Exception:  # e.g. no key for the client's algorithm: counted as an attempt, never stuck
            log.exception("a back-channel logout token could not be sent", extra={"client_id": row.client_id})
            error = "internal error"
        settings = self.core.settings
        age = (utcnow() - aware(row.created_at)).total_seconds()
        if error is None:
            self._settle(row, "delivered", None)
        elif error == GONE or row.attempts >= settings.logout_max_attempts or age >= settings.logout_max_age:
            self._settle(row, "failed", error)
        else:
            delay = retry_delay(row.attempts, settings.logout_retry_base, settings.logout_retry_max)
            self._settle(row, "pending", error, utcnow() + timedelta(seconds=delay))

    def _send(self, row: LogoutDelivery) -> str | None:
        """POST the logout token (§2.5); None when the relying party accepted it, else why not."""
        client = self.core.clients.get(row.client_id)
        if client is None:
            return GONE
        if client.self_registered:  # its URI is untrusted input: checked again now, as the name resolves today
            try:
                self._egress.check("backchannel_logout_uri", row.uri, must_resolve=True)
            except EgressError as exc:
                return str(exc)
        try:
            response = self._http.post(row.uri, data={"logout_token": logout_token(self.core, client, row)},
                                       headers={"Cache-Control": "no-store"})
        except httpx.HTTPError as exc:
            return type(exc).__name__
        return None if response.status_code in (200, 204) else f"HTTP {response.status_code}"

    def _settle(self, row: LogoutDelivery, status: str, error: str | None, retry_at: datetime | None = None) -> None:
        values: dict[str, Any] = {"status": status, "last_error": error[:255] if error else None}
        if status == "delivered":
            values["delivered_at"] = utcnow()
        if retry_at is not None:
            values["next_attempt_at"] = retry_at
        # Only while the claim is still ours: a lapsed lease may have been claimed again (attempts moved on).
        with self._sessions() as session, session.begin():
            session.execute(update(LogoutDelivery)
                            .where(LogoutDelivery.id == row.id, LogoutDelivery.attempts == row.attempts)
                            .values(**values))
        if status == "delivered":
            events.record(events.LOGOUT_DELIVERED, client_id=row.client_id, jti=row.jti, attempts=row.attempts)
        elif status == "failed":
            events.record(events.LOGOUT_DELIVERY_FAILED, outcome="failure", client_id=row.client_id, jti=row.jti,
                          attempts=row.attempts, reason=error)


class DeliveryWorker:
    """A daemon thread running the outbox: at once when woken by a local logout, else every poll."""

    def __init__(self, core: Core) -> None:
        self.outbox = Outbox(core)
        self._poll = core.settings.logout_poll_interval
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="yihao-logout-delivery", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = TIMEOUT * 2) -> None:
        """Finish the deliveries in flight; claimed rows that do not finish are retried after their lease."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self.outbox.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                while self.outbox.deliver_due() == BATCH and not self._stop.is_set():
                    pass
            except Exception:  # the database is away: try again at the next poll
                log.exception("back-channel logout deliveries could not be processed")
            self._wake.wait(self._poll)
