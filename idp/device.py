"""Device codes (RFC 8628) in the ephemeral store: issued to a kiosk, approved in a person's browser.

    device:{digest(device_code)}   the request: client, scope, user code digest, expiry
    device:user:{digest(user_code)} the device code a typed user code stands for, until it is used
    device:grant:{digest(device_code)} the person's answer, taken once by the poll that gets tokens
    device:poll / device:slow       the polling interval, enforced per device code on every worker

User codes are eight characters from twenty consonants (RFC 8628 §6.1: no vowels, so no words; no
digits, so nothing to confuse with O, I or L), shown as XXXX-XXXX, read case-insensitively with
dashes and spaces ignored. Device and user codes are stored by digest only.
"""
from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

from idp.crypto import digest
from idp.store.ephemeral import EphemeralStore, get_json, put_json, take_json
from idp.tokens import Authentication

USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
USER_CODE_LENGTH = 8
SLOW_DOWN_STEP = 5  # RFC 8628 §3.5: each slow_down adds 5 seconds to the interval
REMEMBER_EXPIRED = 300  # an expired device code still answers expired_token this long


class DeviceRefused(Exception):
    """A poll that gets no tokens: `error` is the RFC 8628 §3.5 (or RFC 6749 §5.2) error code."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error, self.description = error, description


@dataclass(frozen=True)
class DeviceRequest:
    device_key: str  # digest of the device code
    client_id: str
    scope: str
    user_code: str  # as shown, XXXX-XXXX


def new_user_code() -> str:
    raw = "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(USER_CODE_LENGTH))
    return f"{raw[:4]}-{raw[4:]}"


def normalize_user_code(typed: str) -> str | None:
    """The canonical XXXX-XXXX form of what a person typed, or None when it cannot be a user code."""
    raw = "".join(ch for ch in typed.upper() if ch not in "- \t")
    if len(raw) != USER_CODE_LENGTH or any(ch not in USER_CODE_ALPHABET for ch in raw):
        return None
    return f"{raw[:4]}-{raw[4:]}"


class DeviceCodes:
    def __init__(self, store: EphemeralStore, ttl: int, interval: int) -> None:
        self._store = store
        self.ttl = ttl
        self.interval = interval

    def reserve_user_code(self) -> str:
        """A new user code no live request holds (20^8 codes make a clash rare, never impossible)."""
        while True:
            user_code = new_user_code()
            if self._store.add(f"device:user:{digest(user_code)}", b"", ttl=self.ttl):
                return user_code

    def save(self, client_id: str, scope: str, device_code: str, user_code: str) -> None:
        """Remember a client's request under its new device code and user code."""
        key = digest(device_code)
        put_json(self._store, f"device:{key}", {"c": client_id, "s": scope, "u": user_code, "i": self.interval,
                                                "e": time.time() + self.ttl}, ttl=self.ttl + REMEMBER_EXPIRED)
        self._store.put(f"device:user:{digest(user_code)}", key.encode(), ttl=self.ttl)

    def lookup(self, typed: str) -> DeviceRequest | None:
        """The pending request a typed user code stands for, if it is live."""
        user_code = normalize_user_code(typed)
        if user_code is None:
            return None
        key = self._store.get(f"device:user:{digest(user_code)}")  # b"" while only reserved
        record = get_json(self._store, f"device:{key.decode()}") if key else None
        if not record or record["e"] <= time.time():
            return None
        return DeviceRequest(key.decode(), record["c"], record["s"], record["u"])  # type: ignore[union-attr]

    def answer(self, request: DeviceRequest, auth: Authentication | None) -> bool:
        """Record the person's approval (`auth`) or denial; the user code is spent. False if it already was."""
        if self._store.take(f"device:user:{digest(request.user_code)}") is None:
            return False
        record = get_json(self._store, f"device:{request.device_key}")
        left = record["e"] - time.time() if record else 0
        if left <= 0:
            return False
        put_json(self._store, f"device:grant:{request.device_key}",
                 {"auth": auth.to_json()} if auth else {"denied": True}, ttl=left)
        return True

    def poll(self, device_code: str, client_id: str) -> tuple[Authentication, str]:
        """The approved grant (authentication, scope) of a device code, once; else DeviceRefused."""
        key = digest(device_code)
        record = get_json(self._store, f"device:{key}")
        if not record or record["c"] != client_id:
            raise DeviceRefused("invalid_grant", "device_code is invalid, expired or already used")
        if record["e"] <= time.time():
            raise DeviceRefused("expired_token", "the device_code has expired; start a new device authorization")
        self._pace(key, record["i"])
        answer: dict[str, Any] | None = take_json(self._store, f"device:grant:{key}")
        if answer is None:
            raise DeviceRefused("authorization_pending", "the end-user has not yet completed the authorization")
        self._store.delete(f"device:{key}")  # single use: the next poll finds nothing
        if answer.get("denied"):
            raise DeviceRefused("access_denied", "the end-user denied the authorization request")
        return Authentication.from_json(answer["auth"]), record["s"]

    def _pace(self, key: str, interval: int) -> None:
        """RFC 8628 §3.5: a poll sooner than the interval the device was given is slow_down, and the
        interval grows by 5 s for this and every later poll (counted in the store: any worker enforces it)."""
        slowed = int(self._store.get(f"device:slow:{key}") or 0)
        if self._store.add(f"device:poll:{key}", b"1", ttl=interval + SLOW_DOWN_STEP * slowed):
            return
        slowed = self._store.incr(f"device:slow:{key}", ttl=self.ttl + REMEMBER_EXPIRED)
        self._store.put(f"device:poll:{key}", b"1", ttl=interval + SLOW_DOWN_STEP * slowed)
        raise DeviceRefused("slow_down", f"poll no more than every {interval + SLOW_DOWN_STEP * slowed} seconds")
