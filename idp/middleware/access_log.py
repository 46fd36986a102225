"""One structured access-log line per HTTP request: method, path, status, duration."""

from __future__ import annotations

import logging
from starlette.types import ASGIApp, Receive, Scope, Send

from idp.middleware.observe import observed

logger = logging.getLogger("yihao.access")


class AccessLog:
    """Log each HTTP request on `yihao.access`; the path only, never the query string (codes, tokens)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        def log(status: int, seconds: float) -> None:
            fields = {"method": scope["method"], "path": scope["path"], "status": status,
                      "duration_ms": round(seconds * 1000, 2)}
            logger.info("%s %s %s", fields["method"], fields["path"], status, extra=fields)

        await observed(self.app, scope, receive, send, log)
