"""Password verification with argon2id, equal cost for unknown usernames, transparent rehash."""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from idp.crypto import random_token


@dataclass(frozen=True)
class PasswordCheck:
    ok: bool
    new_hash: str | None = None  # set when the stored hash used older parameters


def cpu_share(workers: int) -> int:
    """The CPUs this process may run on, shared among the server's worker processes (at least 1)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return max(1, cpus // max(1, workers))


class Passwords:
    """argon2id at the configured cost (OWASP: m=19456 KiB, t=2, p=1).

    At most `concurrency` hashes run at once. Each fills `memory_kib` of memory: a dozen logins
    arriving together on a core that computes one at a time would only share the core, evict each
    other's memory from the caches and all finish late, and hold a dozen times the memory. Waiting
    in line keeps each hash at its single-core speed; unknown usernames wait in the same line.
    """

    def __init__(self, memory_kib: int, time_cost: int, parallelism: int, concurrency: int = 1) -> None:
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism)
        self._slots = threading.BoundedSemaphore(max(1, concurrency))
        # Verified against when the username is unknown, so both paths cost one argon2 verify.
        self._decoy = self._hasher.hash(random_token())

    def hash(self, password: str) -> str:
        with self._slots:
            return self._hasher.hash(password)

    def verify(self, stored: str | None, password: str) -> PasswordCheck:
        """Check `password` against `stored` (None: unknown user — same work, always false)."""
        try:
            with self._slots:
                self._hasher.verify(stored or self._decoy, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return PasswordCheck(ok=False)
        if stored is None:
            return PasswordCheck(ok=False)
        return PasswordCheck(ok=True, new_hash=self.hash(password) if self._hasher.check_needs_rehash(stored) else None)
