"""Where the synchronous core runs for a request: on the event loop, or on the worker's thread pool.

The core is synchronous. A thread hop (hand the call to a pool thread, wake it, wake the loop with the
answer) costs the loop more than a token grant's whole work, so a call runs inline when nothing it can
touch waits on the network: the store is this process's memory, the database is an SQLite file, and
the request cannot make the core fetch anything (a client's jwks_uri for an assertion, a CRL for a
certificate, an upstream's keys for an exchange). A call whose only waits are the store's (Redis)
runs on the loop too, in a greenlet that sleeps through each command (`idp.bridge`, LOOP): a client
credentials grant, an access token's introspection, a userinfo call. Everything else, and every call
that writes through PostgreSQL, runs on the pool so that one slow round trip never stalls the other
requests of the worker.
"""
from __future__ import annotations

from typing import Callable, Literal, TypeVar

from starlette.concurrency import run_in_threadpool

from idp import bridge

T = TypeVar("T")
LOOP = "loop"

# grants whose work stays in this process: codes, sessions and throttles in the store, families in the database
LOCAL_GRANTS = frozenset({"authorization_code", "refresh_token", "client_credentials",
                          "urn:ietf:params:oauth:grant-type:device_code"})


# grants whose work needs the store only: a client from the registry's cache, a key from the key ring
STORE_ONLY_GRANTS = frozenset({"client_credentials"})


def place(local_io: bool, *, local: bool, store_only: bool) -> bool | Literal["loop"]:
    """Where a call runs: inline (True) when `local` (it cannot make the core fetch) and the core's
    I/O is local; on the loop (LOOP) when `local` and `store_only` (its only waits are the store's,
    its reads of the database go through `bridge.offload`); else on the pool (False)."""
    if not local:
        return False
    if local_io:
        return True
    return LOOP if store_only else False


async def run(inline: bool | Literal["loop"], fn: Callable[..., T], *args: object) -> T:
    """`fn(*args)` inline when `inline` is True, in a greenlet on the loop for LOOP, else on the pool."""
    if inline is True:
        return fn(*args)
    if inline == LOOP:
        return await bridge.run(fn, *args)
    return await run_in_threadpool(fn, *args)
