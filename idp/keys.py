"""Signing keys: generate, seal, publish, rotate (jwcrypto), shared by every worker through SQL.

Each algorithm has one ``active`` key (it signs), one ``next`` key (published ahead of use, so a
rotation never produces a token whose key a relying party has not yet seen), and ``retired``
keys kept published until the tokens they signed have expired. Workers cache the key set for a
bounded time and reload at once when the key-set version in the ephemeral store changes.
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from jwcrypto import jwk
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from idp import bridge
from idp.crypto import MasterKey
from idp.models import SigningKey
from idp.models._base import aware
from idp.store.ephemeral import EphemeralStore

ALGORITHMS = ("RS256", "ES256", "EdDSA")
VERSION_KEY = "keys:version"
_GENERATE = {
    "RS256": {"kty": "RSA", "size": 2048},
    "ES256": {"kty": "EC", "crv": "P-256"},
    "EdDSA": {"kty": "OKP", "crv": "Ed25519"},
}


def generate_key(alg: str) -> jwk.JWK:
    key = jwk.JWK.generate(**_GENERATE[alg])
    kid = key.thumbprint()
    return jwk.JWK(**{**json.loads(key.export_private()), "kid": kid, "alg": alg, "use": "sig"})


@dataclass
class _Snapshot:
    signing: dict[str, jwk.JWK] = field(default_factory=dict)  # alg -> private key
    public: dict[str, jwk.JWK] = field(default_factory=dict)  # kid -> public key
    jwks: bytes = b'{"keys":[]}'
    version: bytes | None = None
    loaded_at: float = 0.0
    # (part, kid) -> (what the row stored, the key built from it). A reload hands back the same
    # object for a row that has not changed: idp.jose prepares each key object for signing once,
    # and preparing an RSA private key again costs tens of milliseconds on the thread that signs.
    parsed: dict[tuple[str, str], tuple[Any, jwk.JWK]] = field(default_factory=dict)


class KeyRing:
    """The published and signing keys, cached per worker with a bounded life."""

    def __init__(self, engine: Engine, master: MasterKey, store: EphemeralStore, *, max_age: float = 30.0) -> None:
        self._sessions = sessionmaker(engine, class_=Session, expire_on_commit=False)
        self._engine = engine
        self._aead = master.aead("signing-key")
        self._master_id = master.key_id
        self._store = store
        self._max_age = max_age
        self._snapshot = _Snapshot()
        self._checked_at = 0.0
        self._lock = threading.Lock()
        self._reloading = False  # a caller is reloading: others keep the snapshot in hand meanwhile

    # -- reading ---------------------------------------------------------------------------
    def signing_key(self, alg: str) -> jwk.JWK:
        """The private key that signs with `alg` now."""
        return self._current().signing[alg]

    def public_key(self, kid: str) -> jwk.JWK | None:
        snapshot = self._current()
        key = snapshot.public.get(kid)
        if key is None and time.monotonic() - snapshot.loaded_at > 1.0:
            key = self._reload().public.get(kid)  # a key rotated in by another worker
        return key

    def jwks_json(self) -> bytes:
        return self._current().jwks

    def cached_jwks_json(self) -> bytes | None:
        """The key set if no store check or reload is due (no I/O: callable on the event loop), else None."""
        now = time.monotonic()
        snapshot = self._snapshot
        if now - snapshot.loaded_at > self._max_age or now - self._checked_at > 1.0:
            return None
        return snapshot.jwks

    def _current(self) -> _Snapshot:
        now = time.monotonic()
        snapshot = self._snapshot
        if now - snapshot.loaded_at > self._max_age:
            # The age limit is a backstop (a rotation is announced through the store's version), so
            # while one caller reloads, the others sign with the snapshot in hand instead of every
            # request of the worker queueing for the same reload. A snapshot never loaded (a new
            # worker, or one this worker emptied after changing the keys) holds no keys: they wait.
            return snapshot if self._reloading and snapshot.loaded_at else self._reload()
        if now - self._checked_at > 1.0:
            self._checked_at = now
            if self._store.get(VERSION_KEY) != snapshot.version:
                return self._reload()
        return snapshot

    def _reload(self) -> _Snapshot:
        # SQL under a lock: on the thread pool if this runs on the event loop (see idp.bridge)
        self._reloading = True
        try:
            return bridge.offload(self._reload_now, time.monotonic())
        finally:
            self._reloading = False

    def _reload_now(self, asked_at: float) -> _Snapshot:
        with self._lock:
            if self._snapshot.loaded_at >= asked_at:  # another caller reloaded while this one waited
                return self._snapshot
            version = self._store.get(VERSION_KEY)
            now = datetime.now(timezone.utc)
            with self._sessions() as session:
                rows = session.execute(select(SigningKey)).scalars().all()
            snapshot = _Snapshot(version=version, loaded_at=time.monotonic())
            held = self._snapshot.parsed

            def key(part: str, row: SigningKey, stored: Any, build: Callable[[], jwk.JWK]) -> jwk.JWK:
                hit = held.get((part, row.kid))
                built = hit[1] if hit is not None and hit[0] == stored else build()
                snapshot.parsed[(part, row.kid)] = (stored, built)
                return built

            published = []
            for row in rows:
                if row.state == "retired" and row.publish_until and aware(row.publish_until) <= now:
                    continue
                snapshot.public[row.kid] = key("public", row, row.public_jwk, lambda: jwk.JWK(**row.public_jwk))
                published.append(row.public_jwk)
                if row.state == "active":
                    snapshot.signing[row.alg] = key("private", row, row.private_sealed, lambda: jwk.JWK.from_json(
                        self._aead.open(row.private_sealed, aad=f"signing_key/{row.kid}")))
            snapshot.jwks = json.dumps({"keys": published}, separators=(",", ":")).encode()
            self._snapshot = snapshot
            self._checked_at = time.monotonic()
            return snapshot

    # -- writing ---------------------------------------------------------------------------
    def ensure(self) -> None:
        """Create an active and a next key for every algorithm that lacks them."""
        with self._sessions() as session, session.begin():
            _lock_keys(session)
            rows = session.execute(select(SigningKey).where(SigningKey.state.in_(("active", "next")))).scalars().all()  # type: ignore[attr-defined]
            have = {(row.alg, row.state) for row in rows}
            for alg in ALGORITHMS:
                for state in ("active", "next"):
                    if (alg, state) not in have:
                        session.add(self._new_row(alg, state))
        self._bump()

    def rotate(self, retire_after: int, algorithms: tuple[str, ...] = ALGORITHMS) -> list[str]:
        """Promote each `next` key to active, retire the active one, publish a new next."""
        now = datetime.now(timezone.utc)
        activated: list[str] = []
        with self._sessions() as session, session.begin():
            _lock_keys(session)
            for alg in algorithms:
                rows = session.execute(select(SigningKey).where(SigningKey.alg == alg)).scalars().all()
                by_state = {row.state: row for row in rows if row.state in ("active", "next")}
                current, upcoming = by_state.get("active"), by_state.get("next") or self._new_row(alg, "next")
                if current is not None:
                    current.state, current.retired_at = "retired", now
                    current.publish_until = now + timedelta(seconds=retire_after)
                upcoming.state, upcoming.activated_at = "active", now
                session.add(upcoming)
                session.add(self._new_row(alg, "next"))
                activated.append(upcoming.kid)
                for row in rows:  # forget keys no token can need any more
                    if row.state == "retired" and row.publish_until and aware(row.publish_until) <= now:
                        session.delete(row)
        self._bump()
        return activated

    def _new_row(self, alg: str, state: str) -> SigningKey:
        key = generate_key(alg)
        kid = key.get("kid")
        return SigningKey(
            kid=kid,
            alg=alg,
            state=state,
            public_jwk=json.loads(key.export_public()),
            private_sealed=self._aead.seal(key.export_private().encode(), aad=f"signing_key/{kid}"),
            master_key_id=self._master_id,
            activated_at=datetime.now(timezone.utc) if state == "active" else None,
        )

    def _bump(self) -> None:
        self._store.incr(VERSION_KEY, ttl=10 * 365 * 86400)
        self._snapshot = _Snapshot(parsed=self._snapshot.parsed)  # reloaded at the next read


def _lock_keys(session: Session) -> None:
    """Serialise key-set changes across processes (PostgreSQL advisory lock; SQLite locks the file)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(7460618)"))
