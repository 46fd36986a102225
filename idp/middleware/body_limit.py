"""Reject request bodies over a byte limit with a 413 in the OAuth error format."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(Exception):
    """The streamed request body went past the limit."""


def too_large() -> JSONResponse:
    """The 413 response; Connection: close so the server need not read the rest of the body."""
    body = {"error": "invalid_request", "error_description": "request body too large"}
    return JSONResponse(body, status_code=413, headers={"Connection": "close"})


def declared_length(scope: Scope) -> int | None:
    """The Content-Length header as an int, or None when absent or malformed."""
    value = Headers(scope=scope).get("content-length")
    return int(value) if value is not None and value.isdigit() else None


class BodyLimit:
    """413 when Content-Length or the bytes actually streamed exceed max_bytes; never a 500."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = declared_length(scope)
        if length is not None and length > self.max_bytes:
            return await too_large()(scope, receive, send)
        received = 0
        started = False

        async def receive_with_limit() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge  # Content-Length may be absent (chunked) or a lie
            return message

        async def send_with_flag(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive_with_limit, send_with_flag)
        except BodyTooLarge:
            if started:
                raise  # too late for a 413; the server aborts the half-sent response
            await too_large()(scope, receive, send)
