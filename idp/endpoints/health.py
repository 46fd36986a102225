"""Liveness and readiness for load balancers and orchestrators."""
from __future__ import annotations

from sqlalchemy import text
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    core = request.app.state.core

    def check() -> dict[str, bool]:
        try:
            with core.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            database = True
        except Exception:
            database = False
        return {"database": database, "store": core.store.ping()}

    checks = await run_in_threadpool(check)
    ready = all(checks.values())
    return JSONResponse({"status": "ready" if ready else "unavailable", **checks}, status_code=200 if ready else 503)
