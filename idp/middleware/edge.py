"""The one layer every HTTP request passes through on its way in and out.

In:  the request id (a well-formed X-Request-ID, else a fresh one) bound for logs and audit records,
     the peer address bound for audit records, this provider's audit writer bound as their
     destination (`idp.events.use`), and the body limit (413 on a Content-Length or a
     streamed body over `max_bytes`, never a 500).
Out: X-Request-ID and the default security headers (a handler's own value wins), then one access-log
     line and the request metrics by route template, with the status and the duration. A fault the
     app did not answer is logged here (type and message, with the request id) and answered by
     `server_error(scope)` through the same path: a 500 with the request id and the headers too.

One layer rather than a stack of six: each layer wraps `send` and costs a coroutine per message, and
together they had cost more than a discovery answer itself.

The machine endpoints every token calls (`direct`: token, introspection, revocation, userinfo) are
called from here as their route would call them, with the route recorded for the metrics: the router's
scan, the exception middleware and the route's own wrapper (three more layers around `send`) only
map HTTPException, which those endpoints never raise. A method the route does not take goes through
the router as before (its 405).

Published documents (the discovery document, the key set) are answered here from bytes already in
memory: a GET of one is a lookup, not a trip through routing, a Request and a Response. When a
document's bytes are not at hand (the key set is due a check with the store), the request goes on to
its route like any other, and that route answers with the same headers.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from starlette.requests import Request
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from idp import events
from idp.events import address_var
from idp.metrics import HTTP_DURATION, HTTP_REQUESTS
from idp.middleware.body_limit import BodyTooLarge, too_large
from idp.middleware.metrics import METHODS, route_template
from idp.middleware.request_id import pick_request_id, request_id_var
from idp.middleware.security_headers import CSP, HSTS

logger = logging.getLogger("yihao.access")
errors = logging.getLogger("yihao.error")


def _latin1(pairs: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in pairs.items()]


@dataclass(frozen=True)
class Document:
    """A document served at a fixed path: `body()` gives its current bytes, or None to let its route answer."""

    body: Callable[[], bytes | None]
    media_type: str
    cache_control: str


class Edge:
    def __init__(self, app: ASGIApp, *, hsts: bool, max_bytes: int,
                 documents: Mapping[str, Document] | None = None, audit: events.AuditWriter | None = None,
                 too_large: Callable[[Scope], ASGIApp] = lambda scope: too_large(),
                 server_error: Callable[[Scope], ASGIApp] | None = None,
                 direct: Mapping[tuple[str, str], Route] | None = None) -> None:
        """`too_large(scope)` answers a body over `max_bytes` (the app's own: a page for a person's form);
        `server_error(scope)` a fault (without one, the fault goes on to the server)."""
        self.app = app
        self.too_large = too_large
        self.server_error = server_error
        self.audit = audit
        self.documents = dict(documents or {})
        self.direct = dict(direct or {})  # (path, method) -> the route of a machine endpoint
        self.max_bytes = max_bytes
        defaults = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer",
                    "Content-Security-Policy": CSP, "Cross-Origin-Opener-Policy": "same-origin"}
        if hsts:
            defaults["Strict-Transport-Security"] = HSTS
        self.defaults = _latin1(defaults)
        self._document_headers = {path: _latin1({"Content-Type": doc.media_type, "Cache-Control": doc.cache_control})
                                  + self.defaults for path, doc in self.documents.items()}
        # the metric children per (route, method, status): a route table's worth, looked up once each
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        inbound: str | None = None
        length: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"x-request-id" and inbound is None:
                inbound = value.decode("latin-1")
            elif name == b"content-length" and length is None:
                length = value
        request_id = pick_request_id(inbound)
        token = request_id_var.set(request_id)
        path = scope["path"]
        if path in self.documents and scope["method"] in ("GET", "HEAD"):
            body = self.documents[path].body()
            if body is not None:
                began = time.perf_counter()
                await send({"type": "http.response.start", "status": 200, "headers": [
                    (b"content-length", str(len(body)).encode("latin-1")),
                    (b"x-request-id", request_id.encode("latin-1")), *self._document_headers[path]]})
                await send({"type": "http.response.body", "body": body})
                self._observe_route(path, scope["method"], 200, time.perf_counter() - began, path)
                request_id_var.reset(token)
                return
        scope.setdefault("state", {})["request_id"] = request_id
        if self.audit is not None:
            events.use(self.audit)
        if scope.get("client"):
            address_var.set(scope["client"][0])
        root_path = scope.get("root_path", "")
        status = 500
        started = False
        received = 0
        own_headers = [(b"x-request-id", request_id.encode("latin-1"))]
        defaults = self.defaults

        async def send_out(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers = [(n, v) for n, v in headers if n.lower() != b"x-request-id"] + own_headers
                headers.extend(pair for pair in defaults if pair[0] not in present)
                message["headers"] = headers
            await send(message)

        async def receive_limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge  # Content-Length may be absent (chunked) or a lie
            return message

        began = time.perf_counter()
        try:
            if length is not None and length.isdigit() and int(length) > self.max_bytes:
                await self.too_large(scope)(scope, receive, send_out)
            else:
                try:
                    route = None if root_path else self.direct.get((path, scope["method"]))
                    if route is not None:
                        await _call(route, scope, receive_limited, send_out)
                    else:
                        await self.app(scope, receive_limited, send_out)
                except BodyTooLarge:
                    if started:
                        raise  # too late for a 413; the server aborts the half-sent response
                    await self.too_large(scope)(scope, receive, send_out)
                except Exception:
                    if started or self.server_error is None:
                        raise  # the server logs it and aborts the half-sent response
                    errors.error("unhandled exception in %s %s", scope["method"], path, exc_info=True)
                    await self.server_error(scope)(scope, receive, send_out)
        finally:
            self._observe(scope, root_path, status, time.perf_counter() - began)
        # Not reset on error: the server logs the unhandled exception after we return and that line
        # should still carry the id; each server request runs in its own task context.
        request_id_var.reset(token)

    def _observe(self, scope: Scope, root_path: str, status: int, seconds: float) -> None:
        self._observe_route(route_template(scope, root_path), scope["method"], status, seconds, scope["path"])

    def _observe_route(self, route: str, raw_method: str, status: int, seconds: float, path: str) -> None:
        method = raw_method if raw_method in METHODS else "OTHER"
        key = (route, method, status)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = (HTTP_REQUESTS.labels(route=route, method=method, status=str(status)),
                                          HTTP_DURATION.labels(route=route, method=method))
        series[0].inc()
        series[1].observe(seconds)
        if logger.isEnabledFor(logging.INFO):  # the path only, never the query string (codes, tokens)
            fields = {"method": raw_method, "path": path, "status": status,
                      "duration_ms": round(seconds * 1000, 2)}
            logger.info("%s %s %s", fields["method"], fields["path"], status, extra=fields)


async def _call(route: Route, scope: Scope, receive: Receive, send: Send) -> None:
    """What the router and the route do for a request they match (the scope as they leave it),
    for an endpoint that takes a Request and returns a Response."""
    scope["route"], scope["endpoint"], scope["path_params"] = route, route.endpoint, {}
    response = await route.endpoint(Request(scope, receive, send))
    await response(scope, receive, send)
