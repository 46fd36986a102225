"""create_app(settings) -> the ASGI application: routes, middleware, error pages, lifespan."""
from __future__ import annotations

import contextlib
import json
from typing import Any, AsyncIterator, Mapping

import anyio.to_thread
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Scope

from idp.backchannel import DeliveryWorker
from idp.core import Core, build_core
from idp.endpoints.discovery import metadata
from idp.interaction.pages import negotiate, render
from idp.logs import configure_logging
from idp.endpoints import discovery as discovery_document, jwks as jwks_document
from idp.middleware.edge import Document, Edge
from idp.oauth.flow import Flow
from idp.routes import direct_routes, routes
from idp.settings import Settings

MACHINE_PREFIXES = ("/token", "/par", "/device_authorization", "/introspect", "/revoke", "/userinfo", "/register", "/jwks",
                    "/.well-known", "/healthz", "/readyz", "/metrics")


def _error(request: Request, status: int, error: str, description: str,
           headers: Mapping[str, str] | None = None) -> Response:
    if request.url.path.startswith(MACHINE_PREFIXES):
        return JSONResponse({"error": error, "error_description": description}, status_code=status,
                            headers=headers)
    locale = negotiate(request, request.app.state.core.settings.default_locale)
    response = render(request, "error.html", {"error": error, "error_description": description}, locale=locale,
                      status=status)
    response.headers.update(headers or {})
    return response


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:  # RFC 9110 §15.5.6: a 405 MUST carry Allow
        allow = ", ".join(sorted((exc.headers or {}).get("Allow", "").split(", ")))  # Starlette's is a set
        # RFC 6749 §5.2: a machine endpoint answers with a registered error code
        error = "invalid_request" if request.url.path.startswith(MACHINE_PREFIXES) else "method_not_allowed"
        return _error(request, 405, error, f"{request.method} is not allowed here; use {allow}", {"Allow": allow})
    error = "not_found" if exc.status_code == 404 else "invalid_request"
    return _error(request, exc.status_code, error, exc.detail, exc.headers)


def _fault(scope: Scope) -> Response:
    """An unexpected fault (logged by the edge): the OAuth error for a machine endpoint, a page for a person."""
    return _error(Request(scope), 500, "server_error", "an unexpected error occurred; it has been logged")


def _too_large(scope: Scope) -> Response:
    """A body over the limit: the OAuth error for a machine endpoint, a page for a person's form."""
    return _error(Request(scope), 413, "invalid_request", "request body too large", {"Connection": "close"})


async def _server_error(request: Request, exc: Exception) -> Response:
    return _fault(request.scope)  # a fault outside the edge's reach


def create_app(settings: Settings, core: Core | None = None) -> Starlette:
    configure_logging(settings.log_level)
    owns_core = core is None  # a core handed in is closed by whoever built it
    core = core or build_core(settings, migrate=settings.embedded)
    core.keys.ensure()
    worker = DeliveryWorker(core)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.threads
        worker.start()
        yield
        await anyio.to_thread.run_sync(worker.stop)
        await core.store.detach()  # this loop's store connections end with it
        if owns_core:
            core.close()

    discovery_json = json.dumps(metadata(settings), separators=(",", ":")).encode()
    documents = {  # answered by the edge from memory; their routes answer the same when it cannot
        discovery_document.PATH: Document(lambda: discovery_json, discovery_document.MEDIA_TYPE,
                                          discovery_document.CACHE_CONTROL),
        jwks_document.PATH: Document(core.keys.cached_jwks_json, jwks_document.MEDIA_TYPE, jwks_document.CACHE_CONTROL),
    }
    table = routes(settings)
    middleware = [Middleware(Edge, hsts=settings.hsts, max_bytes=settings.max_body_bytes, documents=documents,
                             direct=direct_routes(table),
                             audit=core.audit, too_large=_too_large, server_error=_fault)]
    handlers: dict[Any, Any] = {HTTPException: _http_error, Exception: _server_error}
    app = Starlette(routes=table, middleware=middleware, exception_handlers=handlers, lifespan=lifespan)
    app.state.core = core
    app.state.flow = Flow(core)
    app.state.logout_worker = worker
    app.state.discovery_json = discovery_json
    return app
