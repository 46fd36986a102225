"""Password verification with argon2id, equal cost for unknown usernames, transparent rehash."""
from __future__ import annotations

from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from idp.crypto import random_token


@dataclass(frozen=True)
class PasswordCheck:
    ok: bool
    new_hash: str | None = None  # set when the stored hash used older parameters


class Passwords:
    """argon2id at the configured cost (OWASP: m=19456 KiB, t=2, p=1)."""

    def __init__(self, memory_kib: int, time_cost: int, parallelism: int) -> None:
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism)
        # Verified against when the username is unknown, so both paths cost one argon2 verify.
        self._decoy = self._hasher.hash(random_token())

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, stored: str | None, password: str) -> PasswordCheck:
        """Check `password` against `stored` (None: unknown user — same work, always false)."""
        try:
            self._hasher.verify(stored or self._decoy, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return PasswordCheck(ok=False)
        if stored is None:
            return PasswordCheck(ok=False)
        return PasswordCheck(ok=True, new_hash=self._hasher.hash(password) if self._hasher.check_needs_rehash(stored) else None)
