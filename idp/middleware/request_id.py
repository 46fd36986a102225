"""A per-request id: taken from a well-formed X-Request-ID or generated, then echoed back."""

from __future__ import annotations

import itertools
import os
import re
import secrets
from contextvars import ContextVar

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

# Strict charset and length: the id lands in logs and headers, so no CR/LF or quoting tricks.
_VALID = re.compile(r"[A-Za-z0-9._-]{1,64}")


# A random per-process prefix and a counter: unique across workers and restarts, and no getrandom()
# system call per request (uuid4 was a measurable share of a JWKS or discovery GET). Not a secret.
_PREFIX = secrets.token_hex(8)
_COUNTER = itertools.count(1)


def _new_prefix() -> None:
    global _PREFIX
    _PREFIX = secrets.token_hex(8)


os.register_at_fork(after_in_child=_new_prefix)  # a forked worker must not repeat its parent's ids


def pick_request_id(inbound: str | None) -> str:
    """Keep a well-formed inbound id, otherwise mint a fresh one (32 hex digits)."""
    if inbound is not None and _VALID.fullmatch(inbound):
        return inbound
    return f"{_PREFIX}{next(_COUNTER):016x}"


class RequestId:
    """Bind the request id to request_id_var and scope["state"], and echo it in X-Request-ID."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request_id = pick_request_id(Headers(scope=scope).get("x-request-id"))
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["X-Request-ID"] = request_id
            await send(message)

        token = request_id_var.set(request_id)
        await self.app(scope, receive, send_with_id)
        # Not reset on error: the server logs the unhandled exception after we return and that
        # line should still carry the id; each server request runs in its own task context.
        request_id_var.reset(token)
