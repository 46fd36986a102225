"""In-process ephemeral store for the embedded mode and the tests."""

from __future__ import annotations

import threading
import time

from idp.store.ephemeral import ttl_ms

# A plain value, or the members of a set (sadd/smembers); like Redis, one key holds one kind.
Value = bytes | frozenset[str]


class MemoryStore:
    """A dict of ``key -> (value, deadline)`` behind one lock; expiry on ``time.monotonic()``.

    Expired entries are invisible at once and purged lazily: a full sweep runs once the writes
    since the last sweep reach the number of entries that sweep left (at least ``sweep_every``).
    The sweep is thus amortised O(1) per write, and the dict never grows past twice its size
    after the last sweep plus ``sweep_every``.
    """

    def __init__(self, sweep_every: int = 1024) -> None:
        self._data: dict[str, tuple[Value, float]] = {}
        self._lock = threading.Lock()
        self._sweep_every = sweep_every
        self._writes = 0
        self._next_sweep = sweep_every

    def put(self, key: str, value: bytes, ttl: float) -> None:
        """Set or overwrite ``key`` so that it expires after ``ttl`` seconds."""
        deadline = _deadline(ttl)
        with self._lock:
            self._write(key, bytes(value), deadline)

    def add(self, key: str, value: bytes, ttl: float) -> bool:
        """Set ``key`` only if absent; True if this call set it."""
        deadline = _deadline(ttl)
        with self._lock:
            if self._live(key) is not None:
                return False
            self._write(key, bytes(value), deadline)
            return True

    def replace(self, key: str, value: bytes, ttl: float) -> bool:
        """Overwrite ``key`` only if it is live, with a new ttl; True if this call set it."""
        deadline = _deadline(ttl)
        with self._lock:
            if self._live(key) is None:
                return False
            self._write(key, bytes(value), deadline)
            return True

    def touch(self, key: str, ttl: float) -> bool:
        """Give a live ``key`` a new ttl, its value unchanged; True if it was live."""
        deadline = _deadline(ttl)
        with self._lock:
            entry = self._live(key)
            if entry is None:
                return False
            self._data[key] = (entry[0], deadline)
            return True

    def get(self, key: str) -> bytes | None:
        """Return the live value of ``key``, or None."""
        with self._lock:
            entry = self._live(key)
        return None if entry is None else _plain(entry[0])

    def get_many(self, keys: list[str]) -> list[bytes | None]:
        """The live values of ``keys``, in order (None where absent or a set, as MGET answers)."""
        with self._lock:
            entries = [self._live(key) for key in keys]
        return [entry[0] if entry is not None and isinstance(entry[0], bytes) else None for entry in entries]

    def take(self, key: str) -> bytes | None:
        """Atomically get and delete ``key``."""
        with self._lock:
            entry = self._live(key)
            if entry is None:
                return None
            del self._data[key]
        return _plain(entry[0])

    def delete(self, key: str) -> None:
        """Remove ``key`` if present."""
        with self._lock:
            self._data.pop(key, None)

    def incr(self, key: str, ttl: float, *, sliding: bool = False) -> int:
        """Atomically increment ``key``; the ttl is set on creation only, or on every call if ``sliding``."""
        deadline = _deadline(ttl)
        with self._lock:
            entry = self._live(key)
            if entry is not None:
                # A fixed window keeps the first deadline, as INCR + PEXPIRE-on-create does.
                count, deadline = int(_plain(entry[0])) + 1, (deadline if sliding else entry[1])
            else:
                count = 1
            self._write(key, str(count).encode(), deadline)
        return count

    def ttl(self, key: str) -> float | None:
        """Return the seconds ``key`` has left, or None if it is absent."""
        with self._lock:
            entry = self._live(key)
        return None if entry is None else max(entry[1] - time.monotonic(), 0.0)

    def sadd(self, key: str, member: str, ttl: float) -> None:
        """Add ``member`` to the set at ``key``; the set's expiry becomes ``ttl`` from now."""
        deadline = _deadline(ttl)
        with self._lock:
            entry = self._live(key)
            members = _members(entry[0]) if entry is not None else frozenset()
            self._write(key, members | {member}, deadline)

    def smembers(self, key: str) -> set[str]:
        """Return the members of the set at ``key`` (empty if absent)."""
        with self._lock:
            entry = self._live(key)
        return set() if entry is None else set(_members(entry[0]))

    def ping(self) -> bool:
        """An in-process dict is always reachable."""
        return True

    def close(self) -> None:
        """Drop every entry."""
        with self._lock:
            self._data.clear()

    async def detach(self) -> None:
        """Nothing to do: this store holds no connection of any event loop."""

    def __len__(self) -> int:
        """Count stored entries, including expired ones not yet purged."""
        with self._lock:
            return len(self._data)

    def _live(self, key: str) -> tuple[Value, float] | None:
        """Return the entry if unexpired, dropping it if expired; caller holds the lock."""
        entry = self._data.get(key)
        if entry is not None and entry[1] <= time.monotonic():
            del self._data[key]
            return None
        return entry

    def _write(self, key: str, value: Value, deadline: float) -> None:
        """Store an entry and sweep when due; caller holds the lock."""
        self._data[key] = (value, deadline)
        self._writes += 1
        if self._writes >= self._next_sweep:
            self._sweep()

    def _sweep(self) -> None:
        """Purge every expired entry; caller holds the lock."""
        now = time.monotonic()
        for key in [k for k, (_, deadline) in self._data.items() if deadline <= now]:
            del self._data[key]
        self._writes = 0
        # Compare with the size the sweep left, not the current size, which grows with writes.
        self._next_sweep = max(self._sweep_every, len(self._data))


def _plain(value: Value) -> bytes:
    """A plain value; a set where one is expected is a caller's error, as WRONGTYPE is in Redis."""
    if not isinstance(value, bytes):
        raise TypeError("the key holds a set, not a value")
    return value


def _members(value: Value) -> frozenset[str]:
    if not isinstance(value, frozenset):
        raise TypeError("the key holds a value, not a set")
    return value


def _deadline(ttl: float) -> float:
    """Turn a ttl into a monotonic deadline, validated exactly as the Redis store does."""
    return time.monotonic() + ttl_ms(ttl) / 1000
