"""The audit-event catalogue and `record()`: every security-relevant act, masked details only.

`record()` builds the row when the act happens (time, request id and client address from the
request's context) and hands it to the `AuditWriter` of the provider doing the act, which writes
rows in batches from its own thread: no request waits for an audit INSERT, and no row is lost
without an error line.

Which writer: the one bound in the current context (`use`), which the app binds for each of its
requests and the logout outbox for its threads — so two providers in one process (the demo's city
and province, a test's two backends) each audit into their own database — else the one configured
last, for work done outside any request (command-line tools).
"""
from __future__ import annotations

import atexit
import contextlib
import contextvars
import json
import logging
import threading
import time
import weakref
from collections import deque
from typing import Any, Iterator

from sqlalchemy import Engine

from idp import audit, bridge
from idp.metrics import AUDIT_LOST, AUDIT_WRITE_FAILURES, AUDIT_WRITTEN
from idp.middleware.request_id import request_id_var
from idp.models._base import utcnow

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
CLIENT_UPDATED = "client.updated"
CLIENT_DELETED = "client.deleted"
CLIENT_REGISTRATION_REFUSED = "client.registration_refused"  # bad metadata or initial access token
INITIAL_ACCESS_TOKEN_ISSUED = "client.initial_access_token_issued"
CLIENT_ASSERTION_REPLAYED = "client.assertion_replayed"  # a client_assertion jti presented again
KEYS_ROTATED = "keys.rotated"
IDENTITY_VERIFIED = "identity.verified"
CA_ADDED, CA_REMOVED = "ca.added", "ca.removed"
CERTIFICATE_REFUSED = "certificate.refused"  # reason: one of idp.pki.errors.REASONS
CERTIFICATE_BOUND = "certificate.bound"  # a certificate logged into its account for the first time
# Second factors; `method` says which: otp | recovery_code | webauthn
MFA_ENROLLED, MFA_ENROL_FAILED, MFA_REMOVED = "mfa.enrolled", "mfa.enrol_failed", "mfa.removed"
MFA_VERIFIED, MFA_FAILED = "mfa.verified", "mfa.failed"
PII_REVEALED, PII_REWRAPPED, REGISTRY_IMPORTED = "pii.revealed", "pii.rewrapped", "registry.imported"
VERIFICATION_FAILED = "identity.verification_failed"  # reason: no_match | registry_unavailable | throttled
AGENT_ADDED = "enterprise.agent_added"
DEVICE_CODE_REFUSED = "device.user_code_refused"  # a typed user code that is unknown or expired
DEVICE_AUTHORIZED, DEVICE_DENIED = "device.authorized", "device.denied"
UPSTREAM_ADDED = "federation.upstream_added"
UPSTREAM_LOGIN = "federation.login"  # a person came back from an upstream (outcome says how it went)
ACCOUNT_LINKED, ACCOUNT_UNLINKED = "federation.linked", "federation.unlinked"
UPSTREAM_LOGOUT = "federation.upstream_logout"  # an upstream's back-channel logout ended local sessions

Row = dict[str, Any]


class AuditWriter:
    """The one writer of a provider's audit rows: a bounded queue drained by one thread.

    Rows reach the table in the order they were recorded, one transaction per batch (up to
    `batch_size` rows, gathered for at most `interval` seconds), and only through `_write`, which
    links each row to the one before in the hash chain (`idp.audit.append`, keyed by `key`).
    Backpressure: when `capacity` rows wait, `put` blocks until the writer has made room — audit is
    fail-closed, an act that cannot be recorded waits rather than goes unrecorded.
    A batch that fails is retried with backoff until it is written; only at `close`, after
    `close_timeout` seconds of failures, are the rows still unwritten given up, with an error line.
    """

    def __init__(self, engine: Engine, key: bytes, *, batch_size: int = 200, interval: float = 0.05,
                 capacity: int = 10_000, close_timeout: float = 10.0) -> None:
        self._engine = engine
        self._key = key
        self.batch_size, self.interval, self.capacity, self.close_timeout = batch_size, interval, capacity, close_timeout
        self._pending: deque[Row] = deque()
        self._cond = threading.Condition()
        self._write_lock = threading.Lock()
        self._recorded = self._done = 0  # rows accepted; rows written (or given up at close)
        self._flushing = 0  # callers waiting in flush(): the batch goes now, not after `interval`
        self._give_up_at: float | None = None  # set by close()
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._thread.start()

    def put(self, row: Row) -> None:
        """Queue one row; blocks only while the queue is full (on the pool, never on the event loop)."""
        with self._cond:
            if self._give_up_at is None and len(self._pending) < self.capacity:
                self._queue(row)
                return
        # a full queue or a closed writer: waiting, or writing ourselves, must not stall the loop
        bridge.offload(self._put_waiting, row)

    def _put_waiting(self, row: Row) -> None:
        with self._cond:
            if len(self._pending) >= self.capacity and self._give_up_at is None:
                log.error("audit queue full (%d events): waiting for the database", self.capacity)
                self._cond.wait_for(lambda: len(self._pending) < self.capacity or self._give_up_at is not None)
            if self._give_up_at is None:
                self._queue(row)
                return
            self._recorded += 1
        self._write_retrying([row])  # closed: no thread drains the queue any more, so the caller writes

    def _queue(self, row: Row) -> None:
        """Append under `_cond`; wake the writer for the first row of a batch and for a full one."""
        self._recorded += 1
        self._pending.append(row)
        if len(self._pending) == 1 or len(self._pending) >= self.batch_size:
            self._cond.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every row recorded before this call is in the table (False if `timeout` passed)."""
        with self._cond:
            target = self._recorded
            self._flushing += 1
            self._cond.notify_all()
            try:
                return self._cond.wait_for(lambda: self._done >= target, timeout)
            finally:
                self._flushing -= 1

    def close(self) -> None:
        """Write everything queued, then stop the thread; later rows are written by their callers."""
        with self._cond:
            if self._give_up_at is None:
                self._give_up_at = time.monotonic() + self.close_timeout
            self._cond.notify_all()
        self._thread.join(self.close_timeout + 5)
        if self._thread.is_alive():
            log.error("audit writer did not finish within %.0f s; %d event(s) may be unwritten",
                      self.close_timeout + 5, len(self._pending))

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            self._write_retrying(batch)

    def _next_batch(self) -> list[Row] | None:
        with self._cond:
            self._cond.wait_for(lambda: self._pending or self._give_up_at is not None)
            # A short wait lets a burst of records share one transaction.
            self._cond.wait_for(lambda: len(self._pending) >= self.batch_size or self._flushing
                                or self._give_up_at is not None, self.interval)
            if not self._pending:
                return None  # closing, and nothing left
            batch = [self._pending.popleft() for _ in range(min(len(self._pending), self.batch_size))]
            self._cond.notify_all()  # room for callers blocked in put()
            return batch

    def _write_retrying(self, batch: list[Row]) -> None:
        delay = 0.1
        while True:
            try:
                self._write(batch)
                break
            except Exception as exc:  # any failure: the rows stay in hand and are tried again
                # The exception's class only: its text may quote row values.
                why = type(getattr(exc, "orig", None) or exc).__name__
                give_up_at = self._give_up_at
                AUDIT_WRITE_FAILURES.inc()
                if give_up_at is not None and time.monotonic() >= give_up_at:
                    AUDIT_LOST.inc(len(batch))
                    log.error("audit: %d event(s) lost at shutdown, the database refused them (%s): %s",
                              len(batch), why, ", ".join(sorted({row["event"] for row in batch})))
                    break
                log.error("audit: %d event(s) not written (%s); retrying in %.1f s", len(batch), why, delay)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
        with self._cond:
            self._done += len(batch)
            self._cond.notify_all()

    def _write(self, rows: list[Row]) -> None:
        with self._write_lock, self._engine.begin() as connection:
            audit.append(connection, self._key, rows)
        AUDIT_WRITTEN.inc(len(rows))


_writers: weakref.WeakSet[AuditWriter] = weakref.WeakSet()  # every writer of this process, for flush and exit
_last: AuditWriter | None = None  # the writer configured last: used outside any bound context
_UNBOUND: Any = object()
_bound: contextvars.ContextVar[AuditWriter | None] = contextvars.ContextVar("audit_writer", default=_UNBOUND)


def configure(engine: Engine | None, key: bytes, *, interval: float = 0.05) -> AuditWriter | None:
    """A new writer into this database, chained under `key` (no engine: records are only logged).

    It also becomes the writer for records made outside any context bound with `use`."""
    global _last
    _last = AuditWriter(engine, key, interval=interval) if engine is not None else None
    if _last is not None:
        _writers.add(_last)
    return _last


def use(writer: AuditWriter | None) -> None:
    """Send the records of the current context (a request, a thread) to `writer` (None: log them only)."""
    _bound.set(writer)


@contextlib.contextmanager
def using(writer: AuditWriter | None) -> Iterator[None]:
    """Send the records made inside the block to `writer`, then to whichever writer was bound before."""
    token = _bound.set(writer)
    try:
        yield
    finally:
        _bound.reset(token)


def current() -> AuditWriter | None:
    """The writer `record()` hands rows to here."""
    writer = _bound.get()
    return _last if writer is _UNBOUND else writer


def flush(timeout: float | None = 30.0) -> bool:
    """Wait until every event recorded so far in this process is in its audit table (False on timeout)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    done = True
    for writer in list(_writers):
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        done = writer.flush(left) and done
    return done


@atexit.register
def _close_at_exit() -> None:  # a safety net for a process that ends without Core.close()
    for writer in list(_writers):
        writer.close()


def audit_row(event: str, *, outcome: str = "success", subject: str | None = None, client_id: str | None = None,
              actor: str | None = None, **details: Any) -> Row:
    """The row `record()` writes: time, request id and client address are taken now, in the caller.

    The details are copied through JSON, so a value the table cannot hold fails here, in the
    caller, rather than later in the writer, and a caller changing them afterwards changes nothing.
    Plain strings, integers, booleans and None (most details: every token's) are what JSON gives back
    as they are, so for those a copy of the dict is the same copy, without the round trip.
    """
    plain = all(type(value) in _PLAIN or value is None for value in details.values())
    return {"at": utcnow(), "event": event, "outcome": outcome, "actor": actor, "subject": subject,
            "client_id": client_id, "address": address_var.get(), "request_id": request_id_var.get(),
            "details": dict(details) if plain else json.loads(json.dumps(details, allow_nan=False))}


_PLAIN = (str, int, bool)  # exact types: a float may be NaN or infinite, which JSON cannot hold


def record(event: str, *, outcome: str = "success", subject: str | None = None, client_id: str | None = None,
           actor: str | None = None, **details: Any) -> None:
    """Record one audit event. `details` must hold masked values only (never an ID number)."""
    row = audit_row(event, outcome=outcome, subject=subject, client_id=client_id, actor=actor, **details)
    log.info("audit", extra={"event": event, "outcome": outcome, "subject": subject, "client_id": client_id})
    writer = current()
    if writer is not None:
        writer.put(row)
