"""Reject request bodies over a byte limit with a 413 in the OAuth error format."""

from __future__ import annotations

from starlette.responses import JSONResponse


class BodyTooLarge(Exception):
    """The streamed request body went past the limit."""


def too_large() -> JSONResponse:
    """The 413 response; Connection: close so the server need not read the rest of the body."""
    body = {"error": "invalid_request", "error_description": "request body too large"}
    return JSONResponse(body, status_code=413, headers={"Connection": "close"})
