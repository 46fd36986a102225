"""Where the synchronous core runs for a request: on the event loop, or on the worker's thread pool.

The core is synchronous. A thread hop (hand the call to a pool thread, wake it, wake the loop with the
answer) costs the loop more than a token grant's whole work, so a call runs inline when nothing it can
touch waits on the network: the store is this process's memory, the database is an SQLite file, and
the request cannot make the core fetch anything (a client's jwks_uri for an assertion, a CRL for a
certificate, an upstream's keys for an exchange). Everything else, and every call on PostgreSQL or
Redis, runs on the pool so that one slow round trip never stalls the other requests of the worker.
"""
from __future__ import annotations

from typing import Callable, TypeVar

from starlette.concurrency import run_in_threadpool

T = TypeVar("T")

# grants whose work stays in this process: codes, sessions and throttles in the store, families in the database
LOCAL_GRANTS = frozenset({"authorization_code", "refresh_token", "client_credentials",
                          "urn:ietf:params:oauth:grant-type:device_code"})


async def run(inline: bool, fn: Callable[..., T], *args: object) -> T:
    """`fn(*args)` inline when `inline`, else on the thread pool."""
    if inline:
        return fn(*args)
    return await run_in_threadpool(fn, *args)
