"""Redis-backed ephemeral store: the only module in the codebase that talks to Redis.

Each command runs on the synchronous client, or, for core code on the event loop (`idp.bridge`), on
that loop's asynchronous client, awaited while other requests go on. The two share the command's
spelling: `self._do(lambda r: r.get(key))` is one round trip either way.
"""

from __future__ import annotations

import asyncio
import math
import threading
import weakref
from typing import Any, Callable, cast

import redis
import redis.asyncio

from idp import bridge
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

_LOOP_CONNECTIONS = 16  # per event loop (a worker)


class RedisStore:
    """Ephemeral store on Redis (>= 6.2 for GETDEL); every key is namespaced by ``prefix``."""

    def __init__(self, url: str, prefix: str = "yihao:") -> None:
        # Bounded timeouts: a stalled Redis must fail a request, not hang a worker thread.
        options: dict[str, Any] = {"socket_timeout": 3.0, "socket_connect_timeout": 3.0, "health_check_interval": 30}
        self._url, self._options = url, options
        self._client = redis.Redis.from_url(url, **options)
        self._prefix = prefix
        self._scripts = _scripts(self._client)
        # an asyncio client belongs to one event loop: one per loop (`detach` closes the running loop's)
        self._on_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopClient] = weakref.WeakKeyDictionary()
        self._made_lock = threading.Lock()

    def put(self, key: str, value: bytes, ttl: float) -> None:
        """Set or overwrite ``key`` so that it expires after ``ttl`` seconds."""
        self._do(lambda r: r.set(self._key(key), value, px=ttl_ms(ttl)))

    def add(self, key: str, value: bytes, ttl: float) -> bool:
        """Set ``key`` only if absent (SET NX); True if this call set it."""
        return bool(self._do(lambda r: r.set(self._key(key), value, px=ttl_ms(ttl), nx=True)))

    def replace(self, key: str, value: bytes, ttl: float) -> bool:
        """Overwrite ``key`` only if it exists (SET XX), with a new ttl; True if this call set it."""
        return bool(self._do(lambda r: r.set(self._key(key), value, px=ttl_ms(ttl), xx=True)))

    def touch(self, key: str, ttl: float) -> bool:
        """Give a live ``key`` a new ttl, its value unchanged (PEXPIRE); True if it was live."""
        return bool(self._do(lambda r: r.pexpire(self._key(key), ttl_ms(ttl))))

    def get(self, key: str) -> bytes | None:
        """Return the live value of ``key``, or None."""
        # Without decode_responses the client hands back bytes; its stubs cannot know that.
        return cast("bytes | None", self._do(lambda r: r.get(self._key(key))))

    def get_many(self, keys: list[str]) -> list[bytes | None]:
        """The live values of ``keys``, in order (None where absent), in one MGET."""
        if not keys:
            return []
        names = [self._key(key) for key in keys]
        return cast("list[bytes | None]", self._do(lambda r: r.mget(names)))

    def take(self, key: str) -> bytes | None:
        """Atomically get and delete ``key`` (GETDEL)."""
        return cast("bytes | None", self._do(lambda r: r.getdel(self._key(key))))

    def delete(self, key: str) -> None:
        """Remove ``key`` if present."""
        self._do(lambda r: r.delete(self._key(key)))

    def incr(self, key: str, ttl: float, *, sliding: bool = False) -> int:
        """Atomically increment ``key``; the ttl is set on creation only, or on every call if ``sliding``."""
        on_loop = bridge.on_loop()
        scripts = self._loop_client().scripts if on_loop else self._scripts
        counted = scripts[_INCR_SLIDING if sliding else _INCR_WITH_TTL](keys=[self._key(key)], args=[ttl_ms(ttl)])
        return int(bridge.wait(counted) if on_loop else counted)

    def ttl(self, key: str) -> float | None:
        """Return the seconds ``key`` has left, or None if it is absent."""
        ms = self._do(lambda r: r.pttl(self._key(key)))
        if ms == -2:
            return None
        # -1: no expiry, which only a write from outside this API can produce.
        return math.inf if ms == -1 else ms / 1000

    def sadd(self, key: str, member: str, ttl: float) -> None:
        """SADD and PEXPIRE in one MULTI/EXEC, so the set never lives without an expiry."""
        name = self._key(key)
        # a pipeline's commands queue and return the pipeline; execute() sends them (and resets it)
        self._do(lambda r: r.pipeline(transaction=True).sadd(name, member).pexpire(name, ttl_ms(ttl)).execute(),
                 batched=False)

    def smembers(self, key: str) -> set[str]:
        """Return the members of the set at ``key`` (empty if absent)."""
        members = cast("set[bytes]", self._do(lambda r: r.smembers(self._key(key))))
        return {m.decode() for m in members}

    def ping(self) -> bool:
        """Return True if Redis answers PING; never raises."""
        try:
            return bool(self._do(lambda r: r.ping()))
        except (redis.RedisError, OSError):
            return False

    def close(self) -> None:
        """Close the client and disconnect its connection pool (the event loops' clients: see `detach`)."""
        self._client.close()
        self._on_loop.clear()

    async def detach(self) -> None:
        """Close the running event loop's connections; call before the loop ends (an app's shutdown)."""
        found = self._on_loop.pop(asyncio.get_running_loop(), None)
        if found is not None:
            await found.settled()
            await found.client.aclose()

    def _do(self, command: Callable[[Any], Any], *, batched: bool = True) -> Any:
        """`command(client)`: for core code on the event loop, awaited on that loop's asyncio client,
        in one pipeline with the other commands its requests issue in the same turn (`batched`);
        else on the synchronous client."""
        if bridge.on_loop():
            found = self._loop_client()
            return bridge.wait(found.submit(command) if batched else command(found.client))
        return command(self._client)

    def _loop_client(self) -> _LoopClient:
        loop = asyncio.get_running_loop()
        found = self._on_loop.get(loop)
        if found is None:
            with self._made_lock:  # loops in other threads (test servers) may share this store
                found = self._on_loop.get(loop) or self._make_loop_client(loop)
        return found

    def _make_loop_client(self, loop: asyncio.AbstractEventLoop) -> _LoopClient:
        # A loop's requests wait their turn for a connection rather than fail when all are busy;
        # a command is one short round trip, so a few connections carry a worker's every request.
        pool = redis.asyncio.BlockingConnectionPool.from_url(self._url, max_connections=_LOOP_CONNECTIONS,
                                                              timeout=3.0, **self._options)
        client = redis.asyncio.Redis.from_pool(pool)  # the client owns the pool: aclose() ends both
        found = _LoopClient(client, _scripts(client))
        self._on_loop[loop] = found
        return found

    def _key(self, key: str) -> str:
        """Namespace ``key`` so several deployments or test runs can share one Redis."""
        return self._prefix + key


def _scripts(client: Any) -> dict[str, Any]:
    """The counter scripts registered on `client` (sync or asyncio), by source."""
    return {source: client.register_script(source) for source in (_INCR_WITH_TTL, _INCR_SLIDING)}


class _LoopClient:
    """One event loop's asyncio client, its registered scripts, and the commands waiting to be sent.

    Commands submitted during one turn of the loop leave together at the end of it, as one pipeline:
    one connection taken from the pool, one write, one read of every answer. Under load a worker's
    requests share round trips instead of queueing for connections."""

    def __init__(self, client: redis.asyncio.Redis, scripts: dict[str, Any]) -> None:
        self.client, self.scripts = client, scripts
        self._waiting: list[tuple[Callable[[Any], Any], asyncio.Future[Any]]] = []
        self._sending: set[asyncio.Task[None]] = set()  # held, so the loop cannot drop a batch in flight

    def submit(self, command: Callable[[Any], Any]) -> asyncio.Future[Any]:
        """The future answer of `command`, queued on the pipeline of this turn."""
        loop = asyncio.get_running_loop()  # not kept: the store's map of loops must not keep them alive
        answer = loop.create_future()
        self._waiting.append((command, answer))
        if len(self._waiting) == 1:
            loop.call_soon(self._flush)
        return answer

    async def settled(self) -> None:
        """Wait for the batches in flight (their requests get their answers before the client closes)."""
        while self._waiting or self._sending:
            if self._sending:
                await asyncio.gather(*self._sending, return_exceptions=True)
            else:  # queued this turn: its flush runs on the next
                await asyncio.sleep(0)

    def _flush(self) -> None:
        batch, self._waiting = self._waiting, []
        task = asyncio.get_running_loop().create_task(self._send(batch))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[tuple[Callable[[Any], Any], asyncio.Future[Any]]]) -> None:
        pipe = self.client.pipeline(transaction=False)
        queued: list[asyncio.Future[Any]] = []
        for command, answer in batch:
            try:
                command(pipe)  # a pipeline queues the command and returns itself
            except Exception as exc:  # noqa: BLE001 - a bad argument fails its own request only
                answer.set_exception(exc)
            else:
                queued.append(answer)
        if not queued:
            return
        try:
            answers = await pipe.execute(raise_on_error=False)
        except BaseException as exc:  # noqa: BLE001 - the connection failed: every waiting request hears it
            for answer in queued:
                if not answer.done():
                    answer.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for answer, value in zip(queued, answers):
            if answer.done():  # its request was cancelled meanwhile
                continue
            if isinstance(value, Exception):
                answer.set_exception(value)
            else:
                answer.set_result(value)
