"""Brute-force protection shared by every worker: failures counted in the ephemeral store per
account and per client address, and a temporary lock that doubles with each failure past the limit.

One pattern for every guessable secret (password, TOTP, recovery code, registration and
verification codes, client secrets)::

    keys = core.throttle.keys("totp", account=account_id)   # + this request's client address
    verdict = core.throttle.check(keys)
    if not verdict.allowed:
        ...  # refuse without checking; tell the person to retry in verdict.retry_after seconds
    if code_is_right:
        core.throttle.success(keys)   # forgets the account's failures, never the address's
    else:
        verdict = core.throttle.failure(keys)   # may start a lock: say so at once

A lock is keyed by what was typed, never by what was found, so an unknown username is locked and
answered exactly like a known one: the lock reveals nothing about which accounts exist.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from idp.crypto import digest
from idp.events import address_var
from idp.settings import Settings
from idp.store.ephemeral import EphemeralStore


@dataclass(frozen=True)
class Limit:
    failures: int  # failures tolerated; the last of them starts the first lock
    window: float  # a failure count is forgotten this long after its last failure, seconds
    lock: float  # the first lock, seconds; doubles with each further failure
    lock_max: float  # the longest lock, seconds

    def lock_for(self, count: int) -> float:
        """The lock that failure number `count` starts (0: none)."""
        if count < self.failures:
            return 0.0
        return min(self.lock * 2.0 ** min(count - self.failures, 32), self.lock_max)


@dataclass(frozen=True)
class Key:
    name: str  # the store key's stem: action, kind and a digest of the value (no raw usernames in Redis)
    limit: Limit
    clears: bool  # a success forgets its failures (an account's; never an address's)


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: int  # whole seconds until every lock has ended; 0 when allowed


ALLOWED = Verdict(True, 0)


class Throttle:
    """Failure counters and locks for any action; see the module docstring for the pattern."""

    def __init__(self, store: EphemeralStore, account: Limit, address: Limit) -> None:
        self._store = store
        self.account, self.address = account, address

    @classmethod
    def from_settings(cls, store: EphemeralStore, settings: Settings) -> Throttle:
        window, lock, lock_max = settings.throttle_window, settings.throttle_lock, settings.throttle_lock_max
        # The count must outlive the lock it started, or a lock could never double.
        window = max(window, lock_max)
        return cls(store, Limit(settings.throttle_account_failures, window, lock, lock_max),
                   Limit(settings.throttle_address_failures, window, lock, lock_max))

    def keys(self, action: str, *, account: str | None = None, address: str | None = None) -> tuple[Key, ...]:
        """The keys of one attempt at `action`: the account (what was typed: username, phone, client id)
        and the client address (this request's, unless given)."""
        found: list[Key] = []
        if account is not None:
            found.append(Key(f"{action}:acct:{digest(account.strip().casefold())}", self.account, True))
        address = address if address is not None else address_var.get()
        if address:
            found.append(Key(f"{action}:addr:{digest(address)}", self.address, False))
        return tuple(found)

    def check(self, keys: Sequence[Key]) -> Verdict:
        """Whether an attempt may go ahead now; it is not counted."""
        locks = [_lock(key) for key in keys]
        held = [lock for lock, mark in zip(locks, self._store.get_many(locks)) if mark is not None]
        if not held:  # the common case: one round trip
            return ALLOWED
        return _verdict(max((self._store.ttl(lock) or 0.0 for lock in held), default=0.0))

    def failure(self, keys: Sequence[Key]) -> Verdict:
        """Count a failed attempt on every key; the verdict for the next attempt (locked if this one locked)."""
        longest = 0.0
        for key in keys:
            count = self._store.incr(_count(key), key.limit.window, sliding=True)
            lock = key.limit.lock_for(count)
            if lock > (self._store.ttl(_lock(key)) or 0.0):  # concurrent failures never shorten a lock
                self._store.put(_lock(key), b"1", ttl=lock)
            longest = max(longest, lock)
        return _verdict(longest)

    def success(self, keys: Sequence[Key]) -> None:
        """Forget the failures of the keys a success clears (the account's, so a person who finally
        remembers starts afresh); an address's stay, or one good account would hide guesses on others."""
        for key in keys:
            if key.clears:
                self._store.delete(_count(key))


def _count(key: Key) -> str:
    return f"throttle:n:{key.name}"


def _lock(key: Key) -> str:
    return f"throttle:lock:{key.name}"


def _verdict(seconds: float) -> Verdict:
    return ALLOWED if seconds <= 0 else Verdict(False, max(1, math.ceil(seconds)))
