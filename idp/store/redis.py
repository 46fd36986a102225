"""Redis-backed ephemeral store: the only module in the codebase that talks to Redis."""

from __future__ import annotations

import math
from typing import cast

import redis

from idp.store.ephemeral import ttl_ms

# INCR and PEXPIRE in one atomic step, so a crash between them cannot leave an immortal
# counter and later increments never extend the window.
_INCR_WITH_TTL = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return count
"""
# INCR and PEXPIRE on every call: a sliding window.
_INCR_SLIDING = """
local count = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return count
"""


class RedisStore:
    """Ephemeral store on Redis (>= 6.2 for GETDEL); every key is namespaced by ``prefix``."""

    def __init__(self, url: str, prefix: str = "yihao:") -> None:
        # Bounded timeouts: a stalled Redis must fail a request, not hang a worker thread.
        self._client = redis.Redis.from_url(
            url,
            socket_timeout=3.0,
            socket_connect_timeout=3.0,
            health_check_interval=30,
        )
        self._prefix = prefix
        self._incr = self._client.register_script(_INCR_WITH_TTL)
        self._incr_sliding = self._client.register_script(_INCR_SLIDING)

    def put(self, key: str, value: bytes, ttl: float) -> None:
        """Set or overwrite ``key`` so that it expires after ``ttl`` seconds."""
        self._client.set(self._key(key), value, px=ttl_ms(ttl))

    def add(self, key: str, value: bytes, ttl: float) -> bool:
        """Set ``key`` only if absent (SET NX); True if this call set it."""
        return bool(self._client.set(self._key(key), value, px=ttl_ms(ttl), nx=True))

    def get(self, key: str) -> bytes | None:
        """Return the live value of ``key``, or None."""
        # Without decode_responses the client hands back bytes; its stubs cannot know that.
        return cast("bytes | None", self._client.get(self._key(key)))

    def get_many(self, keys: list[str]) -> list[bytes | None]:
        """The live values of ``keys``, in order (None where absent), in one MGET."""
        return cast("list[bytes | None]", self._client.mget([self._key(key) for key in keys])) if keys else []

    def take(self, key: str) -> bytes | None:
        """Atomically get and delete ``key`` (GETDEL)."""
        return cast("bytes | None", self._client.getdel(self._key(key)))

    def delete(self, key: str) -> None:
        """Remove ``key`` if present."""
        self._client.delete(self._key(key))

    def incr(self, key: str, ttl: float, *, sliding: bool = False) -> int:
        """Atomically increment ``key``; the ttl is set on creation only, or on every call if ``sliding``."""
        script = self._incr_sliding if sliding else self._incr
        return int(script(keys=[self._key(key)], args=[ttl_ms(ttl)]))

    def ttl(self, key: str) -> float | None:
        """Return the seconds ``key`` has left, or None if it is absent."""
        ms = self._client.pttl(self._key(key))
        if ms == -2:
            return None
        # -1: no expiry, which only a write from outside this API can produce.
        return math.inf if ms == -1 else ms / 1000

    def sadd(self, key: str, member: str, ttl: float) -> None:
        """SADD and PEXPIRE in one MULTI/EXEC, so the set never lives without an expiry."""
        with self._client.pipeline(transaction=True) as pipe:
            pipe.sadd(self._key(key), member)
            pipe.pexpire(self._key(key), ttl_ms(ttl))
            pipe.execute()

    def smembers(self, key: str) -> set[str]:
        """Return the members of the set at ``key`` (empty if absent)."""
        members = cast("set[bytes]", self._client.smembers(self._key(key)))
        return {m.decode() for m in members}

    def ping(self) -> bool:
        """Return True if Redis answers PING; never raises."""
        try:
            return bool(self._client.ping())
        except (redis.RedisError, OSError):
            return False

    def close(self) -> None:
        """Close the client and disconnect its connection pool."""
        self._client.close()

    def _key(self, key: str) -> str:
        """Namespace ``key`` so several deployments or test runs can share one Redis."""
        return self._prefix + key
