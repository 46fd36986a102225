"""The published key set (RFC 7517): active, next and not-yet-expired retired keys."""
from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response


async def jwks(request: Request) -> Response:
    body = await run_in_threadpool(request.app.state.core.keys.jwks_json)
    return Response(body, media_type="application/jwk-set+json", headers={"Cache-Control": "public, max-age=60"})
