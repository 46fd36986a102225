"""Structured JSON logging: one object per line on stderr, tagged with the request id."""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone
from typing import Any

from sqlalchemy.exc import StatementError

from idp.middleware.request_id import request_id_var

_HANDLER_NAME = "yihao-json"
# Everything a bare LogRecord carries; any other attribute came from a caller's `extra=`.
# color_message is uvicorn's ANSI-coloured copy of msg.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message", "asctime", "taskName", "color_message"
}
_EXC_MAX = 300


def _described(exc_type: type[BaseException], exc: BaseException | None) -> str:
    """What a log line says of an exception: its type and message; for a database error, the driver's
    error class and code only. A database's message quotes values: the row of a key that already
    exists (a username), a value it could not store, the statement's parameters."""
    driver = getattr(exc, "orig", None) if isinstance(exc, StatementError) else exc
    if not isinstance(exc, StatementError) and type(exc).__module__.split(".")[0] not in _DRIVERS:
        return f"{exc_type.__qualname__}: {exc}"
    code = getattr(driver, "sqlstate", None) or getattr(driver, "sqlite_errorname", None)
    inner = f" from {type(driver).__qualname__}" if driver is not None and driver is not exc else ""
    return f"{exc_type.__qualname__}{inner}" + (f" (code {code})" if code else "") + ": message withheld"


_DRIVERS = ("psycopg", "sqlite3")


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON line; exceptions as type and message, never a traceback."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id is not None:
            entry["request_id"] = request_id
        if record.exc_info and record.exc_info[0] is not None:
            exc_type, exc = record.exc_info[0], record.exc_info[1]
            entry["exc_type"] = exc_type.__qualname__
            entry["exc"] = _described(exc_type, exc)[:_EXC_MAX]
        for key, value in record.__dict__.items():
            if key not in _STANDARD:
                entry.setdefault(key, value)  # caller extras never overwrite the fields above
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(level: str = "INFO") -> None:
    """Send root and uvicorn logs through one JsonFormatter handler on stderr; safe to call twice."""
    root = logging.getLogger()
    handler = next((h for h in root.handlers if h.name == _HANDLER_NAME), None)
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        handler.name = _HANDLER_NAME
        root.addHandler(handler)
    handler.setFormatter(JsonFormatter())
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
    # uvicorn's access line carries the query string (codes, tokens); AccessLog replaces it.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
