"""Requests are counted and timed per route template (never the raw path: cardinality)."""

from __future__ import annotations


from starlette.routing import Mount
from starlette.types import Scope

UNMATCHED = "<unmatched>"
# Clients can send any method token; unknown ones share one label so they cannot mint series.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def route_template(scope: Scope, root_path: str) -> str:
    """The matched route's path template, prefixed by any Mount paths the router went through."""
    route = scope.get("route")  # Starlette's Router stores the matched route here (1.x)
    if route is None:
        return UNMATCHED
    # Each Mount appends what it matched to root_path; a Mount as the final route is all prefix.
    prefix = scope.get("root_path", "")[len(root_path) :]
    return prefix if isinstance(route, Mount) else prefix + route.path
