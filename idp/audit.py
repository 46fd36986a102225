"""The audit trail's hash chain: append in order, verify, export.

Each row stores the previous row's hash and its own: HMAC-SHA256, under a key derived from the
master key, over a canonical serialisation of the row with its sequence number and the previous
hash. Altering, deleting, reordering or inserting a row breaks the chain at that row, and whoever
can write to the database but does not hold the master key cannot recompute the chain after it.
(Cutting rows off the end leaves a shorter intact chain: `verify` prints the head so it can be kept
elsewhere and compared.)

Appends are serialised across processes: PostgreSQL by a transaction-scoped advisory lock, SQLite by
its one writer lock taken before the head is read. The sequence is the chain's order, gap-free.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterator, Mapping, Sequence

from sqlalchemy import Connection, Engine, select, text

from idp.crypto import MasterKey
from idp.db import DriverStatement
from idp.models import AuditEvent
from idp.models._base import aware

GENESIS = "0" * 64
CHAIN_LOCK = 7460618  # pg_advisory_xact_lock key of the chain's head (migrations use 7460617)
FIELDS = ("seq", "at", "event", "outcome", "actor", "subject", "client_id", "address", "request_id", "details")
_COLUMNS = [getattr(AuditEvent, name) for name in FIELDS] + [AuditEvent.prev_hash, AuditEvent.row_hash]
# Every token writes a row: the batch INSERT skips SQLAlchemy's per-row parameter building
_INSERT = DriverStatement(AuditEvent.__table__.insert(), columns=[c.key for c in _COLUMNS])  # type: ignore[attr-defined]


# json.dumps with options builds an encoder per call; the chain hashes every row, so one is kept
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def chain_key(master: MasterKey) -> bytes:
    """The chain's HMAC key: derived from the master key, used for nothing else."""
    return master.derive("audit-chain")


def canonical(row: Mapping[str, Any], prev_hash: str) -> bytes:
    """The bytes a row's hash covers: every field, the time in UTC to the microsecond, sorted keys."""
    body = {name: row[name] for name in FIELDS} | {"at": _iso(row["at"]), "prev_hash": prev_hash}
    return _CANONICAL.encode(body).encode()


def row_hash(key: bytes, row: Mapping[str, Any], prev_hash: str) -> str:
    return hmac.new(key, canonical(row, prev_hash), hashlib.sha256).hexdigest()


def _iso(at: datetime) -> str:
    return aware(at).astimezone(timezone.utc).isoformat(timespec="microseconds")


def append(connection: Connection, key: bytes, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert `rows` at the head of the chain, inside the caller's transaction (which holds the lock
    until it commits)."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": CHAIN_LOCK})
    else:
        # SQLite: a write (matching nothing) takes the database's writer lock before the head is read.
        connection.execute(text("UPDATE audit_event SET seq = seq WHERE 0"))
    head = connection.execute(select(AuditEvent.seq, AuditEvent.row_hash)  # type: ignore[call-overload]
                              .order_by(AuditEvent.seq.desc()).limit(1)).first()  # type: ignore[union-attr]
    seq, prev = (head[0], head[1]) if head is not None else (0, GENESIS)
    chained = []
    for row in rows:
        seq += 1
        linked = {**row, "seq": seq}
        own = row_hash(key, linked, prev)
        chained.append(linked | {"prev_hash": prev, "row_hash": own})
        prev = own
    _INSERT.execute_many(connection, chained)


@dataclass(frozen=True)
class Verdict:
    records: int
    head_seq: int
    head_hash: str
    bad_seq: int | None = None
    problem: str = ""

    @property
    def intact(self) -> bool:
        return self.bad_seq is None


def verify(engine: Engine, key: bytes) -> Verdict:
    """Walk the chain in sequence order; the first record that does not follow from the one before."""
    expected, prev, count = 1, GENESIS, 0
    for row in _rows(engine):
        if row["seq"] != expected:
            if row["seq"] < expected:
                return Verdict(count, expected - 1, prev, row["seq"], "sequence number repeated or out of order")
            return Verdict(count, expected - 1, prev, expected, f"record missing (the next one is {row['seq']})")
        if not hmac.compare_digest(row["prev_hash"] or "", prev):
            return Verdict(count, expected - 1, prev, expected, "does not link to the record before it")
        if not hmac.compare_digest(row["row_hash"] or "", row_hash(key, row, prev)):
            return Verdict(count, expected - 1, prev, expected, "altered: its hash does not match its contents")
        prev, expected, count = row["row_hash"], expected + 1, count + 1
    return Verdict(count, expected - 1, prev)


def export(engine: Engine, since: datetime | None = None) -> Iterator[dict[str, Any]]:
    """Every record (from `since`) in sequence order, as JSON-ready dicts with their hashes."""
    for row in _rows(engine, since):
        yield dict(row) | {"at": _iso(row["at"])}


def _rows(engine: Engine, since: datetime | None = None) -> Iterator[Mapping[str, Any]]:
    query = select(*_COLUMNS).order_by(AuditEvent.seq)  # type: ignore[arg-type]
    if since is not None:
        query = query.where(AuditEvent.at >= since)  # type: ignore[arg-type]
    with engine.connect() as connection:
        for row in connection.execution_options(yield_per=1000).execute(query):
            yield row._mapping
