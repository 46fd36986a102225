"""Contract suite for the ephemeral store: every backend must pass the same tests."""

from __future__ import annotations

import asyncio
import functools
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from uuid import uuid4

import pytest
import redis

from idp import bridge
from idp.store.ephemeral import EphemeralStore, get_json, open_store, put_json, take_json
from idp.store.memory import MemoryStore

REDIS_URL = os.environ.get("YIHAO_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

StoreFactory = Callable[[], EphemeralStore]


@pytest.fixture(scope="session")
def redis_url() -> str:
    """Return the test Redis URL, skipping (failing in CI) when it is unreachable."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1.0, socket_timeout=1.0)
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        reason = f"Redis not reachable at {REDIS_URL} (set YIHAO_TEST_REDIS_URL): {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must test the Redis backend; {reason}")
        pytest.skip(reason)
    finally:
        client.close()
    return REDIS_URL


class OnLoop:
    """A store whose every call runs as core code on an event loop (`idp.bridge.run`), where a network
    store awaits its commands instead of blocking. Callable from any thread, several at once: their
    calls interleave on the one loop, as a worker's requests do."""

    def __init__(self, store: EphemeralStore, loop: asyncio.AbstractEventLoop) -> None:
        self._store, self._loop = store, loop

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._store, name)
        if name in ("close", "detach"):
            return method

        def call(*args: Any, **kwargs: Any) -> Any:
            work = bridge.run(functools.partial(method, *args, **kwargs))
            return asyncio.run_coroutine_threadsafe(work, self._loop).result(timeout=10)

        return call


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """An event loop running in a thread of its own."""
    running = asyncio.new_event_loop()
    thread = threading.Thread(target=running.run_forever, daemon=True)
    thread.start()
    yield running
    running.call_soon_threadsafe(running.stop)
    thread.join()
    running.close()


@pytest.fixture(params=["memory", "redis", "redis-on-loop"])
def make_store(request: pytest.FixtureRequest) -> Iterator[StoreFactory]:
    """Yield a factory of isolated stores of one backend; each gets its own random prefix.
    `redis-on-loop`: Redis, called the way core code on the event loop calls it (`idp.bridge`)."""
    url = request.getfixturevalue("redis_url") if request.param != "memory" else None
    loop = request.getfixturevalue("loop") if request.param == "redis-on-loop" else None
    opened: list[tuple[EphemeralStore, str]] = []

    def factory() -> EphemeralStore:
        prefix = f"yihao-test:{uuid4().hex}:"
        store = open_store(url, prefix)
        opened.append((store, prefix))
        return store if loop is None else OnLoop(store, loop)  # type: ignore[return-value]

    yield factory
    for store, _ in opened:
        if loop is not None:
            asyncio.run_coroutine_threadsafe(store.detach(), loop).result(timeout=10)
        store.close()
    if url is not None:
        _delete_prefixes(url, [prefix for _, prefix in opened])


def _delete_prefixes(url: str, prefixes: list[str]) -> None:
    """Remove every key the test wrote, through a raw client used for cleanup only."""
    client = redis.Redis.from_url(url)
    try:
        for prefix in prefixes:
            keys = list(client.scan_iter(match=f"{prefix}*"))
            if keys:
                client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def store(make_store: StoreFactory) -> EphemeralStore:
    """One store of the backend under test."""
    return make_store()


def test_put_then_get_returns_the_value(store: EphemeralStore) -> None:
    store.put("k", b"\x00value\xff", ttl=10)
    assert store.get("k") == b"\x00value\xff"


def test_put_overwrites_an_existing_value(store: EphemeralStore) -> None:
    store.put("k", b"old", ttl=10)
    store.put("k", b"new", ttl=10)
    assert store.get("k") == b"new"


def test_get_after_ttl_expiry_returns_none(store: EphemeralStore) -> None:
    store.put("k", b"v", ttl=0.2)
    time.sleep(0.3)
    assert store.get("k") is None
    assert store.ttl("k") is None


def test_get_of_a_missing_key_returns_none(store: EphemeralStore) -> None:
    assert store.get("never-set") is None


def test_get_many_returns_the_live_values_in_order(store: EphemeralStore) -> None:
    store.put("a", b"1", ttl=10)
    store.put("b", b"2", ttl=0.2)
    store.put("c", b"3", ttl=10)
    store.sadd("s", "member", ttl=10)
    time.sleep(0.3)
    assert store.get_many(["c", "missing", "a", "b", "s", "a"]) == [b"3", None, b"1", None, None, b"1"]
    assert store.get_many([]) == []


def test_add_sets_an_absent_key(store: EphemeralStore) -> None:
    assert store.add("k", b"v", ttl=10) is True
    assert store.get("k") == b"v"


def test_add_refuses_an_existing_key_and_keeps_the_old_value(store: EphemeralStore) -> None:
    store.put("k", b"first", ttl=10)
    assert store.add("k", b"second", ttl=10) is False
    assert store.get("k") == b"first"


def test_add_succeeds_again_once_the_old_value_expired(store: EphemeralStore) -> None:
    store.add("k", b"first", ttl=0.2)
    time.sleep(0.3)
    assert store.add("k", b"second", ttl=10) is True
    assert store.get("k") == b"second"


def test_replace_overwrites_a_live_key_with_its_new_ttl(store: EphemeralStore) -> None:
    store.put("k", b"first", ttl=1)
    assert store.replace("k", b"second", ttl=10) is True
    time.sleep(1.1)  # the first ttl would have ended it
    assert store.get("k") == b"second"


def test_replace_never_creates_a_key(store: EphemeralStore) -> None:
    assert store.replace("never-set", b"v", ttl=10) is False
    store.put("gone", b"v", ttl=10)
    store.delete("gone")
    assert store.replace("gone", b"again", ttl=10) is False
    store.put("expired", b"v", ttl=0.2)
    time.sleep(0.3)
    assert store.replace("expired", b"again", ttl=10) is False
    assert store.get_many(["never-set", "gone", "expired"]) == [None, None, None]


def test_touch_gives_a_live_key_a_new_ttl_and_keeps_its_value(store: EphemeralStore) -> None:
    store.put("k", b"v", ttl=1)
    assert store.touch("k", ttl=10) is True
    time.sleep(1.1)
    assert store.get("k") == b"v"
    store.put("k", b"v", ttl=10)
    assert store.touch("k", ttl=0.2) is True  # a shorter ttl too
    time.sleep(0.3)
    assert store.get("k") is None


def test_touch_never_creates_a_key(store: EphemeralStore) -> None:
    assert store.touch("never-set", ttl=10) is False
    assert store.get("never-set") is None


def test_take_returns_the_value_once_then_none(store: EphemeralStore) -> None:
    store.put("code", b"payload", ttl=10)
    assert store.take("code") == b"payload"
    assert store.take("code") is None
    assert store.get("code") is None


def test_take_is_atomic_under_concurrency(store: EphemeralStore) -> None:
    racers, rounds = 16, 50
    with ThreadPoolExecutor(max_workers=racers) as pool:
        for n in range(rounds):
            key = f"code:{n}"
            store.put(key, b"payload", ttl=10)
            start = threading.Barrier(racers)

            def race(key: str = key, start: threading.Barrier = start) -> bytes | None:
                start.wait(timeout=5)
                return store.take(key)

            results = list(pool.map(lambda _: race(), range(racers)))
            assert results.count(b"payload") == 1, f"round {n}: {results}"
            assert results.count(None) == racers - 1


def test_incr_counts_from_one(store: EphemeralStore) -> None:
    assert [store.incr("hits", ttl=10) for _ in range(3)] == [1, 2, 3]
    assert store.get("hits") == b"3"


def test_incr_keeps_the_ttl_set_by_the_first_increment(store: EphemeralStore) -> None:
    store.incr("hits", ttl=0.5)
    store.incr("hits", ttl=100)
    remaining = store.ttl("hits")
    assert remaining is not None
    assert 0 < remaining <= 0.5


def test_incr_on_an_expired_key_restarts_at_one(store: EphemeralStore) -> None:
    store.incr("hits", ttl=0.2)
    store.incr("hits", ttl=0.2)
    time.sleep(0.3)
    assert store.incr("hits", ttl=10) == 1


def test_a_sliding_incr_restarts_the_ttl_on_every_increment(store: EphemeralStore) -> None:
    store.incr("fails", ttl=0.4, sliding=True)
    time.sleep(0.25)
    assert store.incr("fails", ttl=0.4, sliding=True) == 2
    time.sleep(0.25)  # past the first increment's deadline, within the second's
    assert store.incr("fails", ttl=0.4, sliding=True) == 3
    time.sleep(0.5)
    assert store.get("fails") is None


def test_a_sliding_incr_may_also_shorten_the_ttl(store: EphemeralStore) -> None:
    store.incr("fails", ttl=100, sliding=True)
    store.incr("fails", ttl=0.5, sliding=True)
    remaining = store.ttl("fails")
    assert remaining is not None and 0 < remaining <= 0.5


def test_sliding_incr_is_atomic_under_concurrency(store: EphemeralStore) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        counts = list(pool.map(lambda _: store.incr("hits", ttl=10, sliding=True), range(200)))
    assert sorted(counts) == list(range(1, 201))


def test_incr_is_atomic_under_concurrency(store: EphemeralStore) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        counts = list(pool.map(lambda _: store.incr("hits", ttl=10), range(200)))
    assert sorted(counts) == list(range(1, 201))


def test_delete_removes_the_key(store: EphemeralStore) -> None:
    store.put("k", b"v", ttl=10)
    store.delete("k")
    assert store.get("k") is None


def test_delete_of_a_missing_key_is_a_no_op(store: EphemeralStore) -> None:
    store.delete("never-set")
    assert store.get("never-set") is None


def test_ttl_reports_the_remaining_seconds(store: EphemeralStore) -> None:
    store.put("k", b"v", ttl=30)
    remaining = store.ttl("k")
    assert remaining is not None
    assert 29 < remaining <= 30


def test_ttl_of_a_missing_key_is_none(store: EphemeralStore) -> None:
    assert store.ttl("never-set") is None


@pytest.mark.parametrize("ttl", [0, -1, float("nan")])
def test_a_non_positive_ttl_is_rejected(store: EphemeralStore, ttl: float) -> None:
    with pytest.raises(ValueError):
        store.put("k", b"v", ttl=ttl)
    assert store.get("k") is None


def test_smembers_returns_every_distinct_member_added(store: EphemeralStore) -> None:
    store.sadd("rps", "client-a", ttl=10)
    store.sadd("rps", "client-b", ttl=10)
    store.sadd("rps", "client-a", ttl=10)
    assert store.smembers("rps") == {"client-a", "client-b"}


def test_smembers_of_a_missing_set_is_empty(store: EphemeralStore) -> None:
    assert store.smembers("never-set") == set()


def test_a_set_expires_with_its_ttl(store: EphemeralStore) -> None:
    store.sadd("rps", "client-a", ttl=0.2)
    time.sleep(0.3)
    assert store.smembers("rps") == set()
    assert store.ttl("rps") is None


def test_sadd_resets_the_ttl_of_the_set(store: EphemeralStore) -> None:
    store.sadd("rps", "client-a", ttl=0.3)
    store.sadd("rps", "client-b", ttl=30)
    remaining = store.ttl("rps")
    assert remaining is not None and 29 < remaining <= 30
    time.sleep(0.4)
    assert store.smembers("rps") == {"client-a", "client-b"}


def test_delete_removes_a_set(store: EphemeralStore) -> None:
    store.sadd("rps", "client-a", ttl=10)
    store.delete("rps")
    assert store.smembers("rps") == set()


def test_concurrent_sadds_lose_no_member(store: EphemeralStore) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda n: store.sadd("rps", f"client-{n}", ttl=10), range(100)))
    assert store.smembers("rps") == {f"client-{n}" for n in range(100)}


@pytest.mark.parametrize("ttl", [0, -1])
def test_sadd_rejects_a_non_positive_ttl(store: EphemeralStore, ttl: float) -> None:
    with pytest.raises(ValueError):
        store.sadd("rps", "client-a", ttl=ttl)
    assert store.smembers("rps") == set()


def test_ping_is_true_when_reachable(store: EphemeralStore) -> None:
    assert store.ping() is True


def test_json_helpers_round_trip(store: EphemeralStore) -> None:
    session = {"sub": "u-1", "amr": ["pwd", "otp"], "name": "张三", "auth_time": 1700000000}
    put_json(store, "sso:1", session, ttl=10)
    assert get_json(store, "sso:1") == session
    assert take_json(store, "sso:1") == session
    assert take_json(store, "sso:1") is None


def test_json_is_stored_compactly(store: EphemeralStore) -> None:
    put_json(store, "sso:1", {"a": [1, 2]}, ttl=10)
    assert store.get("sso:1") == b'{"a":[1,2]}'


def test_stores_with_different_prefixes_do_not_see_each_other(make_store: StoreFactory) -> None:
    first, second = make_store(), make_store()
    first.put("k", b"first", ttl=10)
    assert second.get("k") is None
    assert second.add("k", b"second", ttl=10) is True
    assert first.get("k") == b"first"
    assert second.take("k") == b"second"
    assert first.get("k") == b"first"


def test_redis_ping_is_false_when_unreachable_instead_of_raising() -> None:
    # Port 1 on loopback refuses connections at once; the store must swallow the error.
    store = open_store("redis://127.0.0.1:1/0", prefix=f"yihao-test:{uuid4().hex}:")
    try:
        assert store.ping() is False
    finally:
        store.close()


def test_memory_store_purges_expired_entries_so_memory_stays_bounded() -> None:
    store = MemoryStore(sweep_every=8)
    for n in range(8):
        store.put(f"old:{n}", b"v", ttl=0.05)
    time.sleep(0.1)
    for n in range(8):
        store.put(f"new:{n}", b"v", ttl=10)
    assert len(store) == 8


def test_a_command_on_the_loop_lets_the_loop_run_while_it_waits(redis_url: str) -> None:
    """Core code on the event loop (`idp.bridge`) awaits Redis: other tasks go on during each round
    trip. A blocking command would hold the loop until the answer came, and the ticker would never run."""
    store = open_store(redis_url, f"yihao-test:{uuid4().hex}:")

    async def scenario() -> int:
        ticks = 0
        done = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not done.is_set():
                ticks += 1
                await asyncio.sleep(0)

        def core_code() -> list[bytes | None]:
            store.put("k", b"v", ttl=10)
            return [store.get("k") for _ in range(20)]

        task = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        before = ticks
        assert await bridge.run(core_code) == [b"v"] * 20
        during = ticks - before
        done.set()
        await task
        await store.detach()
        return during

    try:
        assert asyncio.run(scenario()) > 0
    finally:
        store.close()


def test_commands_sent_together_each_get_their_own_answer(redis_url: str) -> None:
    """Requests on one loop share a pipeline per turn (idp.store.redis): every answer must reach the
    request that asked, and a command with a bad argument fails alone."""
    store = open_store(redis_url, f"yihao-test:{uuid4().hex}:")

    async def scenario() -> tuple[list[Any], list[Any]]:
        await asyncio.gather(*(bridge.run(store.put, f"k{n}", f"v{n}".encode(), 10) for n in range(40)))
        reads = [bridge.run(store.get, f"k{n}") for n in range(40)]
        await bridge.run(store.sadd, "set", "member", 10)
        mixed = [bridge.run(store.put, "bad", b"x", 0), bridge.run(store.get_many, ["k1", "missing", "k2"]),
                 bridge.run(store.take, "k3"), bridge.run(store.get, "set")]
        answers = await asyncio.gather(*reads, *mixed, return_exceptions=True)
        await store.detach()
        return answers[:40], answers[40:]

    try:
        reads, (bad, many, taken, wrong_type) = asyncio.run(scenario())
        assert reads == [f"v{n}".encode() for n in range(40)]
        assert isinstance(bad, ValueError)  # refused before it was sent
        assert isinstance(wrong_type, redis.ResponseError) and "WRONGTYPE" in str(wrong_type)  # refused by Redis
        assert many == [b"v1", None, b"v2"] and taken == b"v3"
        assert store.get("k3") is None and store.get("k4") == b"v4"
    finally:
        store.close()


def test_an_unreachable_redis_fails_every_waiting_request_on_the_loop_and_ping_says_so() -> None:
    store = open_store("redis://127.0.0.1:1/0", "yihao-test:")  # nothing listens on port 1

    async def scenario() -> tuple[list[Any], bool]:
        answers = await asyncio.gather(*(bridge.run(store.get, f"k{n}") for n in range(5)), return_exceptions=True)
        alive = await bridge.run(store.ping)
        await store.detach()
        return answers, alive

    try:
        answers, alive = asyncio.run(scenario())
        assert all(isinstance(answer, redis.ConnectionError) for answer in answers), answers
        assert alive is False
    finally:
        store.close()


@pytest.mark.parametrize("turns", [0, 1, 2, 3, 5])
def test_a_request_cancelled_while_its_command_is_batched_or_in_flight_leaves_the_others_whole(
        redis_url: str, turns: int) -> None:
    """A request cancelled while its command waits in this turn's batch, or while the batch is on the
    wire (a client gone, a shutdown): its core code unwinds at the wait and goes no further, the
    requests that shared its batch get their own answers, and the loop's connection is fit for the next
    command (no reply left unread on it)."""
    store = open_store(redis_url, f"yihao-test:{uuid4().hex}:")
    started: list[bool] = []
    reached: list[Any] = []
    unwound: list[bool] = []

    def cancelled_request() -> None:
        started.append(True)  # not when cancelled before its task first ran (turns=0)
        try:
            reached.append(store.get("k2"))
        finally:
            unwound.append(True)

    async def scenario() -> tuple[list[Any], Any, list[Any]]:
        await bridge.run(store.put, "k1", b"v1", 10)
        await bridge.run(store.put, "k2", b"v2", 10)
        first = asyncio.create_task(bridge.run(store.get, "k1"))
        doomed = asyncio.create_task(bridge.run(cancelled_request))
        last = asyncio.create_task(bridge.run(store.get_many, ["k1", "k2"]))
        for _ in range(turns):
            await asyncio.sleep(0)
        doomed.cancel()
        # bounded: a batch that lost its other answers would leave their requests waiting forever
        answers = await asyncio.wait_for(asyncio.gather(first, doomed, last, return_exceptions=True), 10)
        after = await asyncio.wait_for(asyncio.gather(bridge.run(store.get, "k2"), bridge.run(store.take, "k1")), 10)
        await store.detach()
        return [answers[0], answers[2]], answers[1], after

    try:
        (first, last), doomed, after = asyncio.run(scenario())
        assert isinstance(doomed, asyncio.CancelledError)
        assert reached == [] and unwound == started  # stopped at its wait, and its finally ran
        assert started == ([True] if turns else [])
        assert first == b"v1" and last == [b"v1", b"v2"]
        assert list(after) == [b"v2", b"v1"]
    finally:
        store.close()
