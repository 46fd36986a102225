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

The greenlets are kept and reused, a few per thread: making one, switching into it and letting it end
cost about 8 us, more than a client-credentials grant spends on anything but its signature; a kept
one takes the next call in one switch.
"""
from __future__ import annotations

from typing import Any, Awaitable, Callable, TypeVar

import threading

import greenlet
from starlette.concurrency import run_in_threadpool

T = TypeVar("T")


class _Done:
    """What a worker hands back when its call has ended: the value, or the exception it raised."""

    __slots__ = ("value", "error")

    def __init__(self, value: Any, error: BaseException | None) -> None:
        self.value, self.error = value, error


class _OnLoop(greenlet.greenlet):
    """A greenlet running core code for tasks of the event loop, one call after another; its parent is
    the loop's greenlet. Between calls it waits, idle, in its thread's list."""

    def __init__(self, parent: greenlet.greenlet) -> None:
        super().__init__(self._serve, parent)

    def _serve(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        while True:
            try:
                done = _Done(fn(*args), None)
            except greenlet.GreenletExit:
                raise  # collected while a call was under way (its loop is gone): end, as the call does
            except BaseException as exc:  # noqa: BLE001 - handed to the caller, who raises it
                done = _Done(None, exc)
            fn = args = None  # type: ignore[assignment]  # hold nothing of the call while idle
            fn, args = self.parent.switch(done)  # GreenletExit here: collected while idle, the end


_IDLE_KEPT = 32  # idle workers kept per thread: enough for the calls one loop has under way at once
_idle = threading.local()


def on_loop() -> bool:
    """True in code started by `run`: a blocking call here would stall the event loop."""
    return isinstance(greenlet.getcurrent(), _OnLoop)


async def run(fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` on the event loop; each `wait` inside it is awaited by the calling task."""
    here = greenlet.getcurrent()
    idle: list[_OnLoop] = _idle.__dict__.setdefault("workers", [])
    child = idle.pop() if idle else _OnLoop(here)
    if child.parent is not here:  # a worker serves calls from the greenlet it was made under only
        child = _OnLoop(here)
    child.gr_context = here.gr_context  # the request's context variables (request id, client address)
    pending = child.switch(fn, args)
    while not isinstance(pending, _Done):  # the child is waiting: `pending` is what it waits for
        try:
            value = await pending
        except BaseException as exc:  # noqa: BLE001 - raised in the child, where its own code handles it
            pending = child.throw(exc)
        else:
            pending = child.switch(value)
    child.gr_context = None  # keeps no request's context while idle
    if len(idle) < _IDLE_KEPT:
        idle.append(child)
    if pending.error is not None:
        error, pending.error = pending.error, None
        raise error
    return pending.value  # type: ignore[no-any-return]


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
