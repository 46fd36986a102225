"""The bridge that runs synchronous core code on the event loop (idp.bridge)."""
from __future__ import annotations

import asyncio
import contextvars
import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from idp import bridge
from idp.db import make_engine

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="none")


def test_core_code_returns_its_value_and_sees_the_tasks_context() -> None:
    async def scenario() -> tuple[str, bool, bool]:
        request_id.set("r-1")

        def core() -> tuple[str, bool]:
            return request_id.get(), bridge.on_loop()

        seen, inside = await bridge.run(core)
        return seen, inside, bridge.on_loop()

    assert asyncio.run(scenario()) == ("r-1", True, False)


def test_calls_one_after_another_each_see_their_own_tasks_context_and_outlive_failures() -> None:
    """The greenlets that run core code are reused: a call must see its own task's context, never the
    one before it, and a call that raised leaves the next one working."""

    def core() -> str:
        return request_id.get()

    def failing() -> None:
        raise LookupError("gone")

    async def in_a_task(value: str | None) -> str:
        if value is not None:
            request_id.set(value)
        return await bridge.run(core)

    async def scenario() -> list[str]:
        seen = [await asyncio.create_task(in_a_task("a"))]
        with pytest.raises(LookupError):
            await bridge.run(failing)
        seen.append(await asyncio.create_task(in_a_task(None)))  # a task that set nothing
        seen.append(await asyncio.create_task(in_a_task("c")))
        return seen

    assert asyncio.run(scenario()) == ["a", "none", "c"]


def test_waits_interleave_with_other_tasks_on_the_loop() -> None:
    """Two requests' core code, each waiting on something the other provides: only possible if a wait
    hands the loop back instead of blocking it."""

    async def scenario() -> list[str]:
        first, second = asyncio.Event(), asyncio.Event()
        order: list[str] = []

        def one() -> None:
            order.append("one waits")
            bridge.wait(first.wait())
            order.append("one resumes")
            second.set()

        def two() -> None:
            order.append("two sets")
            first.set()
            bridge.wait(second.wait())
            order.append("two resumes")

        await asyncio.wait_for(asyncio.gather(bridge.run(one), bridge.run(two)), timeout=5)
        return order

    assert asyncio.run(scenario()) == ["one waits", "two sets", "one resumes", "two resumes"]


def test_an_error_raised_by_an_awaited_call_reaches_the_core_code_which_may_handle_it() -> None:
    async def failing() -> None:
        raise LookupError("gone")

    def core() -> str:
        try:
            bridge.wait(failing())
        except LookupError as exc:
            return f"handled {exc}"
        return "not raised"

    def unhandled() -> None:
        bridge.wait(failing())

    async def scenario() -> str:
        with pytest.raises(LookupError, match="gone"):
            await bridge.run(unhandled)
        return await bridge.run(core)

    assert asyncio.run(scenario()) == "handled gone"


def test_cancelling_the_task_unwinds_the_waiting_core_code() -> None:
    unwound = threading.Event()

    def core() -> None:
        try:
            bridge.wait(asyncio.sleep(30))
        finally:
            unwound.set()

    async def scenario() -> None:
        task = asyncio.create_task(bridge.run(core))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert unwound.is_set()


def test_wait_outside_the_loop_is_refused_and_leaves_no_coroutine_behind() -> None:
    coroutine = asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="outside bridge.run"):
        bridge.wait(coroutine)
    assert coroutine.cr_frame is None  # closed, never to warn "was never awaited"


def test_offload_runs_on_a_pool_thread_from_the_loop_and_in_place_elsewhere() -> None:
    loop_thread = threading.get_ident()

    async def scenario() -> int:
        return await bridge.run(bridge.offload, threading.get_ident)

    assert asyncio.run(scenario()) != loop_thread
    assert bridge.offload(threading.get_ident) == loop_thread


def test_an_engine_refuses_sql_on_the_loop_and_serves_it_offloaded(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'bridge.db'}")

    def select_one() -> int:
        with engine.connect() as connection:
            return int(connection.execute(text("SELECT 1")).scalar_one())

    async def scenario() -> int:
        with pytest.raises(RuntimeError, match="SQL on the event loop"):
            await bridge.run(select_one)
        return await bridge.run(bridge.offload, select_one)

    try:
        assert asyncio.run(scenario()) == 1
        assert select_one() == 1  # on a plain thread, as ever
    finally:
        engine.dispose()
