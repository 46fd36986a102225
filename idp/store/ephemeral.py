"""The ephemeral store: short-lived shared state behind one narrow, synchronous interface.

SSO sessions, interactions, authorization codes, CSRF state, rate-limit counters and replay
markers all live here. Production uses Redis (shared by every worker); the embedded mode and
the tests use an in-process dict. Both pass the same contract suite.
"""

from __future__ import annotations

import json
import math
from typing import Any, Protocol


class EphemeralStore(Protocol):
    """Expiring key/value storage; every method is synchronous and thread-safe, and may be called
    by core code that `idp.bridge` runs on the event loop (where a network store awaits instead).

    Keys are ``str``, values ``bytes``, ``ttl`` is seconds (float, > 0). Example::

        store.put(f"interaction:{uid}", payload, ttl=600)
        payload = store.take(f"code:{digest(code)}")  # single use by construction
    """

    def put(self, key: str, value: bytes, ttl: float) -> None:
        """Set or overwrite ``key`` so that it expires after ``ttl`` seconds."""
        ...

    def add(self, key: str, value: bytes, ttl: float) -> bool:
        """Set ``key`` only if absent (SET NX); True if this call set it."""
        ...

    def replace(self, key: str, value: bytes, ttl: float) -> bool:
        """Overwrite ``key`` only if it is live (SET XX), with a new ttl; True if this call set it.
        What was deleted or expired meanwhile stays gone."""
        ...

    def touch(self, key: str, ttl: float) -> bool:
        """Give a live ``key`` a new ttl, its value unchanged (PEXPIRE); True if it was live."""
        ...

    def get(self, key: str) -> bytes | None:
        """Return the live value of ``key``, or None."""
        ...

    def get_many(self, keys: list[str]) -> list[bytes | None]:
        """The live values of ``keys``, in order (None where absent): one round trip (MGET)."""
        ...

    def take(self, key: str) -> bytes | None:
        """Atomically get and delete ``key``: of concurrent takers exactly one gets the value."""
        ...

    def delete(self, key: str) -> None:
        """Remove ``key`` if present."""
        ...

    def incr(self, key: str, ttl: float, *, sliding: bool = False) -> int:
        """Atomically increment ``key``; the ttl is set on creation only, never extended (a fixed
        window), unless ``sliding``: then every increment restarts it, so the count lives as long
        as increments keep coming less than ``ttl`` apart (failure counters, back-off)."""
        ...

    def ttl(self, key: str) -> float | None:
        """Return the seconds ``key`` has left, or None if it is absent."""
        ...

    def sadd(self, key: str, member: str, ttl: float) -> None:
        """Add ``member`` to the set at ``key`` and (re)set the set's expiry to ``ttl``, atomically."""
        ...

    def smembers(self, key: str) -> set[str]:
        """Return the members of the live set at ``key`` (empty if absent)."""
        ...

    def ping(self) -> bool:
        """Return True if the store is reachable; never raises."""
        ...

    def close(self) -> None:
        """Release connections; the store is unusable afterwards."""
        ...

    async def detach(self) -> None:
        """Release the running event loop's connections (core code run on the loop by `idp.bridge`
        uses them); call before the loop ends. The store stays usable."""
        ...


def open_store(redis_url: str | None, prefix: str = "yihao:") -> EphemeralStore:
    """Open Redis when a URL is configured, else an in-process store (embedded mode, tests)."""
    if redis_url is None:
        from idp.store.memory import MemoryStore

        # A process-private dict shares its keyspace with nobody, so it needs no prefix.
        return MemoryStore()
    # Imported lazily so the embedded mode never needs the redis package loaded.
    from idp.store.redis import RedisStore

    return RedisStore(redis_url, prefix)


def ttl_ms(ttl: float) -> int:
    """Convert a ttl in seconds to whole milliseconds, rounding up so it never becomes 0."""
    if not ttl > 0:  # also rejects NaN
        raise ValueError(f"ttl must be a positive number of seconds, got {ttl!r}")
    return math.ceil(ttl * 1000)


def _dumps(obj: Any) -> bytes:
    """Serialise compactly: one SSO session per signed-in user adds up."""
    return _COMPACT.encode(obj).encode()


_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)  # json.dumps builds one per call


def _loads(raw: bytes | None) -> Any:
    """Deserialise a stored value, passing None through."""
    return None if raw is None else json.loads(raw)


def put_json(store: EphemeralStore, key: str, obj: Any, ttl: float) -> None:
    """Store ``obj`` as compact JSON under ``key``."""
    store.put(key, _dumps(obj), ttl)


def replace_json(store: EphemeralStore, key: str, obj: Any, ttl: float) -> bool:
    """Overwrite ``key`` with ``obj`` as compact JSON only if it is live; True if it was."""
    return store.replace(key, _dumps(obj), ttl)


def get_json(store: EphemeralStore, key: str) -> Any:
    """Return the JSON value under ``key``, or None."""
    return _loads(store.get(key))


def take_json(store: EphemeralStore, key: str) -> Any:
    """Atomically get and delete the JSON value under ``key``, or None."""
    return _loads(store.take(key))
