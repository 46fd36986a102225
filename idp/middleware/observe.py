"""Run an ASGI app and report the response status and duration, even when the app raises."""

from __future__ import annotations

import time
from typing import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send


async def observed(app: ASGIApp, scope: Scope, receive: Receive, send: Send,
                   done: Callable[[int, float], None]) -> None:
    """Call `app`, then `done(status, seconds)`; status 500 if it raised before starting a response."""
    status = 500
    start = time.perf_counter()

    async def send_with_status(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        await send(message)

    try:
        await app(scope, receive, send_with_status)
    finally:
        done(status, time.perf_counter() - start)
