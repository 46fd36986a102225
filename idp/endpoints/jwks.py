"""The published key set (RFC 7517): active, next and not-yet-expired retired keys."""
from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response


PATH = "/jwks"
MEDIA_TYPE = "application/jwk-set+json"
CACHE_CONTROL = "public, max-age=60"


async def jwks(request: Request) -> Response:
    keys = request.app.state.core.keys
    # The thread hop costs more than serving the cached bytes; it is taken only when the store must be asked.
    body = keys.cached_jwks_json() or await run_in_threadpool(keys.jwks_json)
    return Response(body, media_type=MEDIA_TYPE, headers={"Cache-Control": CACHE_CONTROL})
