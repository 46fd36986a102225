"""The synchronous core on the event loop, its network waits made asynchronous by a greenlet.

The core is synchronous code. Run on the thread pool, a request pays the hop into the pool and two
thread switches for each Redis round trip; run plainly on the event loop, one slow round trip would
stall every other request of the worker. `run` is the third way: it starts the core in a greenlet on
the loop. Where the core waits on the network (a Redis command), the store calls `wait` with the
command's coroutine: the greenlet sleeps, the loop serves other requests, and the greenlet resumes
with the answer. Code keeps one synchronous shape, whichever way it runs::

    verdict = await bridge.run(core.throttle.check, keys)   # on the loop: its MGET is awaited
    verdict = core.throttle.check(keys)                      # on a pool thread: the same call blocks

Work that can only block, SQL through a synchronous driver or a reload under a lock, goes through
`offload`: on the loop it runs on the thread pool while the greenlet waits; elsewhere in place. An
engine refuses SQL on the loop outright (see `idp.db.make_engine`), so a path that forgot to offload
fails its tests instead of stalling a worker.

One rule keeps this safe: never hold a threading lock across a `wait`. Another greenlet of the same
thread taking that lock would block the loop, and with it the greenlet that holds it, forever.
"""
from __future__ import annotations

from typing import Any, Awaitable, Callable, TypeVar

import greenlet
from starlette.concurrency import run_in_threadpool

T = TypeVar("T")


class _OnLoop(greenlet.greenlet):
    """A greenlet running core code for a task of the event loop; its parent is the loop's greenlet."""

    def __init__(self, fn: Callable[..., Any], parent: greenlet.greenlet) -> None:
        super().__init__(fn, parent)
        self.gr_context = parent.gr_context  # the request's context variables (request id, client address)


def on_loop() -> bool:
    """True in code started by `run`: a blocking call here would stall the event loop."""
    return isinstance(greenlet.getcurrent(), _OnLoop)


async def run(fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` on the event loop; each `wait` inside it is awaited by the calling task."""
    child = _OnLoop(fn, greenlet.getcurrent())
    pending = child.switch(*args)
    while not child.dead:  # the child is waiting: `pending` is what it waits for
        try:
            value = await pending
        except BaseException as exc:  # noqa: BLE001 - raised in the child, where its own code handles it
            pending = child.throw(exc)
        else:
            pending = child.switch(value)
    return pending  # type: ignore[no-any-return]


def wait(awaitable: Awaitable[T]) -> T:
    """The result of `awaitable`, awaited by the event loop while this greenlet sleeps (only under `run`)."""
    current = greenlet.getcurrent()
    if not isinstance(current, _OnLoop):
        close = getattr(awaitable, "close", None)
        if close is not None:
            close()  # never leave a coroutine un-awaited
        raise RuntimeError("bridge.wait outside bridge.run: nothing would await it")
    return current.parent.switch(awaitable)  # type: ignore[no-any-return]


def offload(fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)`, on the thread pool if called on the event loop (see `run`), else in place."""
    if on_loop():
        return wait(run_in_threadpool(fn, *args))
    return fn(*args)
