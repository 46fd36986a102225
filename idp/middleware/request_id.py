"""A per-request id: taken from a well-formed X-Request-ID or generated, then echoed back."""

from __future__ import annotations

import itertools
import os
import re
import secrets
from contextvars import ContextVar


request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

# Strict charset and length: the id lands in logs and headers, so no CR/LF or quoting tricks.
_VALID = re.compile(r"[A-Za-z0-9._-]{1,64}")


# A random per-process prefix and a counter: unique across workers and restarts, and no getrandom()
# system call per request (uuid4 was a measurable share of a JWKS or discovery GET). Not a secret.
_PREFIX = secrets.token_hex(8)
_COUNTER = itertools.count(1)


def _new_prefix() -> None:
    global _PREFIX
    _PREFIX = secrets.token_hex(8)


os.register_at_fork(after_in_child=_new_prefix)  # a forked worker must not repeat its parent's ids


def pick_request_id(inbound: str | None) -> str:
    """Keep a well-formed inbound id, otherwise mint a fresh one (32 hex digits)."""
    if inbound is not None and _VALID.fullmatch(inbound):
        return inbound
    return f"{_PREFIX}{next(_COUNTER):016x}"
