"""A remote population registry over HTTP, with timeouts, retries and a circuit breaker.

The service's contract (README "Population registry service"):
``POST {url}/verify`` with ``{"name": ..., "id_number": ...}`` answers 200 and
``{"result": "match" | "mismatch" | "not_found"}``. Anything else — a transport error, a timeout,
a 5xx, a 4xx, a body without one of those results — is ``unavailable``: a citizen is never told
their details do not match because the service was down.

The breaker lives in the worker process: each worker learns on its own that the service is down,
which costs at most ``failures`` slow calls per worker, and needs nothing shared.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable

import httpx

from realname.pii import IdNumber
from realname.registry import Verdict

log = logging.getLogger("yihao.registry")
_RESULTS = frozenset({"match", "mismatch", "not_found"})


class CircuitBreaker:
    """Closed → open after ``failures`` consecutive failed calls → one probe after ``cooldown`` s.

    A successful probe closes it; a failed probe opens it for another cool-down.
    """

    def __init__(self, failures: int, cooldown: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._threshold = failures
        self._cooldown = cooldown
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> str:
        with self._lock:
            if self._opened_at is None:
                return "closed"
            return "half_open" if self._probing or self._cooled_down() else "open"

    def _cooled_down(self) -> bool:
        return self._opened_at is not None and self._clock() - self._opened_at >= self._cooldown

    def allow(self) -> bool:
        """May a call go out now? In half-open state only one probe at a time."""
        with self._lock:
            if self._opened_at is None:
                return True
            if self._probing or not self._cooled_down():
                return False
            self._probing = True
            return True

    def succeeded(self) -> None:
        with self._lock:
            self._failures, self._opened_at, self._probing = 0, None, False

    def failed(self) -> None:
        with self._lock:
            self._failures += 1
            if self._probing or self._failures >= self._threshold:
                self._opened_at = self._clock()
            self._probing = False


class _Retryable(Exception):
    """A transport error or a 5xx: worth another attempt."""


class HttpPopulationRegistry:
    def __init__(self, url: str, *, timeout: float, retries: int, breaker: CircuitBreaker,
                 backoff: float = 0.1, client: httpx.Client | None = None) -> None:
        self._url = url.rstrip("/") + "/verify"
        self._retries = retries
        self._backoff = backoff
        self.breaker = breaker
        self._client = client or httpx.Client(timeout=timeout, follow_redirects=False)

    def verify(self, name: str, id_number: IdNumber) -> Verdict:
        if not self.breaker.allow():
            return Verdict("unavailable", "http", "circuit_open")
        # Sending the number to the registry is the purpose it was collected for; it is not shown.
        body = {"name": name, "id_number": id_number.reveal()}
        detail = "unknown"
        for attempt in range(self._retries + 1):
            if attempt:
                time.sleep(self._backoff * 2 ** (attempt - 1))
            try:
                outcome = self._call(body)
            except _Retryable as exc:
                detail = str(exc)
                continue
            if outcome is None:
                detail = "bad_response"
                break
            self.breaker.succeeded()
            return Verdict(outcome, "http")  # type: ignore[arg-type]
        self.breaker.failed()
        log.warning("population registry unavailable", extra={"detail": detail, "breaker": self.breaker.state})
        return Verdict("unavailable", "http", detail)

    def _call(self, body: dict[str, str]) -> str | None:
        """The definite result, None for an answer that is not one, _Retryable for a failure."""
        try:
            response = self._client.post(self._url, json=body)
        except httpx.TimeoutException:
            raise _Retryable("timeout") from None
        except httpx.TransportError:
            raise _Retryable("connection") from None
        if response.status_code >= 500:
            raise _Retryable(f"http_{response.status_code}")
        if response.status_code != 200:
            return None
        try:
            result = response.json().get("result")
        except (ValueError, AttributeError):
            return None
        return result if result in _RESULTS else None

    def close(self) -> None:
        self._client.close()
