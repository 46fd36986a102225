"""Accounts: creation and password authentication (no enumeration by message or timing)."""
from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from typing import Any, Sequence

from sqlalchemy import Engine, bindparam, select, update
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from idp import db, events
from idp.authn.password import Passwords
from idp.crypto import random_token
from idp.models import Account
from idp.models._base import utcnow
from idp.store.ephemeral import EphemeralStore

USERNAME = re.compile(r"^[A-Za-z0-9._@+-]{3,128}$")


class AccountInputError(ValueError):
    """Input that cannot make an account; the message says which field and why."""


@dataclass(frozen=True)
class Profile:
    id: str
    username: str
    status: str
    name: str | None
    given_name: str | None
    family_name: str | None
    email: str | None
    email_verified: bool
    phone_number: str | None
    phone_number_verified: bool
    locale: str | None
    kind: str  # person | enterprise
    assurance_level: int  # identity level 1–4 (realname.identity)
    updated_at: int


def may_sign_in(profile: Profile | None) -> bool:
    """Whether the account exists and is active: a disabled one signs in nowhere and gets no tokens."""
    return profile is not None and profile.status == "active"


# The columns a Profile is made of, in its field order (updated_at last). The login and userinfo
# reads are Core selects built once: ORM objects, or a statement built per call, cost more CPU than
# the round trip itself.
_PROFILE = (Account.id, Account.username, Account.status, Account.name, Account.given_name, Account.family_name,
            Account.email, Account.email_verified, Account.phone_number, Account.phone_number_verified,
            Account.locale, Account.kind, Account.assurance_level, Account.updated_at)

_BY_ID = select(*_PROFILE).where(Account.id == bindparam("id"))
_BY_USERNAME = select(Account.password_hash, *_PROFILE).where(Account.username == bindparam("username"))


def _profile(row: Sequence[Any]) -> Profile:
    return Profile(*row[:-1], int(row[-1].timestamp()))


def profile_of(row: Account) -> Profile:
    """The Profile of an Account row just written (its columns in Profile order)."""
    return _profile([getattr(row, column.key) for column in _PROFILE])


def check_new_credentials(username: str, password: str) -> None:
    """Raise AccountInputError unless these can be a new account's username and password."""
    if not USERNAME.match(username):
        raise AccountInputError("username: 3–128 characters of letters, digits and . _ @ + -")
    if len(password) < 8 or len(password) > 1024:
        raise AccountInputError("password: between 8 and 1024 characters")


# How long a worker keeps a profile it has read: the bound for a change made outside Yihao's own code
# (Yihao's writers drop the cached copies of every worker at once, through the store).
PROFILE_CACHE_SECONDS = 120.0
PROFILE_CACHE_SIZE = 4096


def changed_key(account_id: str) -> str:
    """Store key of an account's change mark: a fresh value each time the account changes."""
    return f"account-changed:{account_id}"


class Accounts:
    def __init__(self, engine: Engine, passwords: Passwords, store: EphemeralStore) -> None:
        self._sessions = sessionmaker(engine, class_=Session, expire_on_commit=False)
        self._reads = db.Reads(engine)
        self._store = store
        self.passwords = passwords
        # account id -> (profile, the change mark it was read under, when): see `current`
        self._cached: dict[str, tuple[Profile, bytes | None, float]] = {}
        self._cached_lock = threading.Lock()

    def current(self, account_id: str, mark: bytes | None) -> Profile | None:
        """The account's profile, from this worker's copy when the account has not changed since.

        `mark` is the account's change mark as the store holds it now (`changed_key`); the caller
        reads it in a round trip it makes anyway. A copy read under another mark, or older than
        PROFILE_CACHE_SECONDS, is read again."""
        now = time.monotonic()
        entry = self._cached.get(account_id)
        if entry is not None and entry[1] == mark and now - entry[2] < PROFILE_CACHE_SECONDS:
            return entry[0]
        profile = self.get(account_id)
        with self._cached_lock:
            if profile is None:
                self._cached.pop(account_id, None)
                return None
            if len(self._cached) >= PROFILE_CACHE_SIZE:  # amortised: a sweep frees at least a quarter
                fresh = [(k, v) for k, v in self._cached.items() if now - v[2] < PROFILE_CACHE_SECONDS]
                self._cached = dict(fresh[-(PROFILE_CACHE_SIZE * 3 // 4):])
            self._cached[account_id] = (profile, mark, now)
        return profile

    def active(self, account_id: str) -> bool:
        """Whether the account exists and may sign in (a disabled account gets no more tokens)."""
        return may_sign_in(self.current(account_id, self._store.get(changed_key(account_id))))

    def changed(self, account_id: str) -> None:
        """Call after a change to the account is committed: every worker's copy of it is read again."""
        self._store.put(changed_key(account_id), random_token(9).encode(), ttl=PROFILE_CACHE_SECONDS * 2)
        with self._cached_lock:
            self._cached.pop(account_id, None)

    def create(self, username: str, password: str, **profile: object) -> Profile:
        check_new_credentials(username, password)
        row = Account(username=username, password_hash=self.passwords.hash(password), **profile)  # type: ignore[arg-type]
        with self._sessions() as session, session.begin():
            if session.execute(select(Account.id).where(Account.username == username)).first():
                raise AccountInputError(f"username {username!r} is taken")
            session.add(row)
        events.record(events.ACCOUNT_CREATED, subject=row.id)
        return profile_of(row)

    def username_taken(self, username: str) -> bool:
        return self.by_username(username) is not None

    def by_username(self, username: str) -> Profile | None:
        row = self._reads.first(_BY_USERNAME, {"username": username}) if USERNAME.match(username) else None
        return _profile(row[1:]) if row is not None else None

    def get(self, account_id: str) -> Profile | None:
        row = self._reads.first(_BY_ID, {"id": account_id})
        return _profile(row) if row is not None else None

    def authenticate(self, username: str, password: str) -> Profile | None:
        """The account if the password is right and the account active; one argon2 verify either way."""
        row = self._reads.first(_BY_USERNAME, {"username": username}) if USERNAME.match(username) else None
        check = self.passwords.verify(row[0] if row is not None else None, password[:1024])
        if row is None or not check.ok:
            return None
        profile = _profile(row[1:])
        if not may_sign_in(profile):
            return None
        if check.new_hash:
            self._rehash(profile.id, check.new_hash)
        return profile

    def _rehash(self, account_id: str, new_hash: str) -> None:
        with self._sessions() as session, session.begin():
            session.execute(update(Account).where(Account.id == account_id)
                            .values(password_hash=new_hash, updated_at=utcnow()))
        events.record(events.PASSWORD_REHASHED, subject=account_id)
