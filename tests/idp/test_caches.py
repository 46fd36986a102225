"""A worker's caches of clients and keys: one caller reads again what has gone stale, the others are
served the copy in hand meanwhile, and a change announced by another worker is still seen."""
from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, Callable, Iterator

import pytest
from sqlalchemy import Engine, event

from idp import bridge
from idp.clients import ClientRegistry
from idp.keys import KeyRing
from tests.idp.conftest import Provider

CONCURRENT = 20


@pytest.fixture
def reads() -> Iterator[Callable[[Engine, str], list[str]]]:
    """`reads(engine, table)`: the SELECTs from `table` that the engine runs from now on."""
    listening: list[tuple[Engine, Any]] = []

    def watch(engine: Engine, table: str) -> list[str]:
        seen: list[str] = []

        def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            if statement.lstrip().upper().startswith("SELECT") and f"FROM {table}" in statement:
                seen.append(statement)

        event.listen(engine, "before_cursor_execute", before)
        listening.append((engine, before))
        return seen

    yield watch
    for engine, listener in listening:
        event.remove(engine, "before_cursor_execute", listener)


def _at_once(call: Callable[[], Any]) -> list[Any]:
    """`call()` from CONCURRENT requests on one event loop, as a worker runs them (idp.bridge)."""

    async def scenario() -> list[Any]:
        return await asyncio.gather(*(bridge.run(call) for _ in range(CONCURRENT)))

    return asyncio.run(scenario())


def test_a_stale_client_is_read_again_by_one_request_while_the_others_use_the_copy_in_hand(
        provider: Provider, reads: Callable[[Engine, str], list[str]]) -> None:
    core = provider.core
    client, _ = core.clients.create(name="cached", redirect_uris=["https://rp.example.gov.cn/cb"])
    registry = ClientRegistry(core.engine, core.store, max_age=0.0)  # every entry is stale at once
    assert registry.get(client.client_id) is not None
    selects = reads(core.engine, "client")
    found = _at_once(lambda: registry.get(client.client_id))
    assert [c.client_id for c in found] == [client.client_id] * CONCURRENT
    assert len(selects) == 1  # not one per request


def test_a_client_changed_by_another_worker_is_read_again_within_a_second(provider: Provider) -> None:
    core = provider.core
    client, _ = core.clients.create(name="before", redirect_uris=["https://rp.example.gov.cn/cb"])
    this_worker = ClientRegistry(core.engine, core.store)  # entries live 30 s; the store's version says more
    assert this_worker.get(client.client_id).name == "before"
    core.clients.update(client.client_id, name="after", redirect_uris=["https://rp.example.gov.cn/cb"])
    time.sleep(1.1)  # the version is looked at once a second
    assert this_worker.get(client.client_id).name == "after"


def test_a_client_deleted_by_another_worker_is_gone_within_a_second(provider: Provider) -> None:
    core = provider.core
    client, _ = core.clients.create(name="doomed", redirect_uris=["https://rp.example.gov.cn/cb"])
    this_worker = ClientRegistry(core.engine, core.store)
    assert this_worker.get(client.client_id) is not None
    assert core.clients.delete(client.client_id)
    time.sleep(1.1)
    assert this_worker.get(client.client_id) is None


def test_after_a_key_change_no_request_signs_before_the_keys_are_loaded_again(provider: Provider) -> None:
    # the worker that changes the keys empties its snapshot: nobody may be served that empty set
    core = provider.core
    ring = KeyRing(core.engine, core.master, core.store, max_age=0.0)
    ring.signing_key("ES256")
    ring.rotate(retire_after=900)
    kids = {key.get("kid") for key in _at_once(lambda: ring.signing_key("ES256"))}
    assert len(kids) == 1 and kids != {None}
    assert ring.jwks_json() != b'{"keys":[]}'


def test_a_stale_key_set_is_reloaded_by_one_request_while_the_others_sign_with_the_keys_in_hand(
        provider: Provider) -> None:
    core = provider.core
    ring = KeyRing(core.engine, core.master, core.store, max_age=0.0)  # every read finds the set stale
    kid = ring.signing_key("ES256").get("kid")
    gate = threading.Event()

    def held(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "FROM signing_key" in statement:
            gate.wait(10)  # the reload's read takes as long as the test says

    async def scenario() -> tuple[int, list[str]]:
        tasks = [asyncio.ensure_future(bridge.run(ring.signing_key, "ES256")) for _ in range(CONCURRENT)]
        done, _ = await asyncio.wait(tasks, timeout=3)
        served = len(done)  # while the reload was still reading
        gate.set()
        return served, [key.get("kid") for key in await asyncio.gather(*tasks)]

    event.listen(core.engine, "before_cursor_execute", held)
    try:
        served, kids = asyncio.run(scenario())
    finally:
        gate.set()
        event.remove(core.engine, "before_cursor_execute", held)
    assert served == CONCURRENT - 1  # all but the one reloading
    assert kids == [kid] * CONCURRENT
