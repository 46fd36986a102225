"""Record request count and duration per route template (never the raw path: cardinality)."""

from __future__ import annotations


from starlette.routing import Mount
from starlette.types import ASGIApp, Receive, Scope, Send

from idp.metrics import HTTP_DURATION, HTTP_REQUESTS
from idp.middleware.observe import observed

UNMATCHED = "<unmatched>"
# Clients can send any method token; unknown ones share one label so they cannot mint series.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def route_template(scope: Scope, root_path: str) -> str:
    """The matched route's path template, prefixed by any Mount paths the router went through."""
    route = scope.get("route")  # Starlette's Router stores the matched route here (1.x)
    if route is None:
        return UNMATCHED
    # Each Mount appends what it matched to root_path; a Mount as the final route is all prefix.
    prefix = scope.get("root_path", "")[len(root_path) :]
    return prefix if isinstance(route, Mount) else prefix + route.path


class Metrics:
    """Count and time HTTP requests into yihao_http_requests_total / _request_duration_seconds."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        root_path = scope.get("root_path", "")

        def record(status: int, seconds: float) -> None:
            route = route_template(scope, root_path)
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            HTTP_REQUESTS.labels(route=route, method=method, status=str(status)).inc()
            HTTP_DURATION.labels(route=route, method=method).observe(seconds)

        await observed(self.app, scope, receive, send, record)
