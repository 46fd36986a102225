"""Prometheus metrics on a dedicated registry, aggregated across workers in multiprocess mode."""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.requests import Request
from starlette.responses import Response

REGISTRY = CollectorRegistry()
# 1 ms to 5 s: discovery and token calls sit low, password hashing around 100-500 ms.
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

HTTP_REQUESTS = Counter(
    "yihao_http_requests",
    "HTTP requests by route template.",
    ["route", "method", "status"],
    registry=REGISTRY,
)
HTTP_DURATION = Histogram(
    "yihao_http_request_duration_seconds",
    "HTTP request duration by route template.",
    ["route", "method"],
    buckets=DURATION_BUCKETS,
    registry=REGISTRY,
)
LOGINS = Counter(
    "yihao_logins", "Login attempts by outcome: success, failure, locked.", ["outcome"], registry=REGISTRY
)
TOKENS_ISSUED = Counter(
    "yihao_tokens_issued", "Tokens issued by grant_type.", ["grant_type"], registry=REGISTRY
)
_ISSUED: dict[str, Any] = {}  # TOKENS_ISSUED's child per grant type: labels() costs more than inc()


def token_issued(grant_type: str) -> None:
    """Count one token response of `grant_type`."""
    child = _ISSUED.get(grant_type)
    if child is None:
        child = _ISSUED[grant_type] = TOKENS_ISSUED.labels(grant_type=grant_type)
    child.inc()


AUDIT_WRITTEN = Counter("yihao_audit_events_written", "Audit events written to the chain.", registry=REGISTRY)
AUDIT_WRITE_FAILURES = Counter(
    "yihao_audit_write_failures", "Audit batches the database refused (each is retried).", registry=REGISTRY
)
AUDIT_LOST = Counter(
    "yihao_audit_events_lost", "Audit events given up at shutdown after the database kept refusing them.",
    registry=REGISTRY,
)


def render_metrics() -> bytes:
    """Exposition text: every worker's files under PROMETHEUS_MULTIPROC_DIR, else this process."""
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


async def metrics_endpoint(request: Request) -> Response:
    """Serve render_metrics() for a Prometheus scrape."""
    return Response(render_metrics(), media_type=CONTENT_TYPE_LATEST)
