"""Calls to an upstream provider: the errors people see, the URL rule, and bounded fetches with a timeout."""
from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx

from idp.settings import is_loopback_host
from idp.untrusted import parse_json

MAX_BYTES = 256 * 1024  # a discovery document, key set or userinfo answer larger than this is not one


class UpstreamError(Exception):
    """An upstream failed, refused, or sent something that does not verify: a code people see on a
    page (zh-CN and English in the locales as `error.<code>`) and a description for the log."""

    def __init__(self, code: str, description: str) -> None:
        super().__init__(description)
        self.code, self.description = code, description


class UpstreamInputError(ValueError):
    """Upstream configuration that cannot be accepted; the message names the field."""


def check_url(name: str, url: str) -> str:
    """An absolute URL; https unless its host is loopback (tests, a provider on the same machine)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UpstreamInputError(f"{name} must be an absolute http(s) URL, got {url!r}")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise UpstreamInputError(f"{name} must use https (plain http is accepted only on loopback)")
    return url


def fetch_json(http: httpx.Client, url: str, *, method: str = "GET", **kwargs: Any) -> Any:
    """A JSON body of at most MAX_BYTES from `url`; UpstreamError on anything else, timeouts included."""
    status, body = fetch(http, url, method=method, **kwargs)
    try:
        value = parse_json(body)
    except ValueError:
        raise UpstreamError("upstream_unavailable", f"{url} answered {status} without JSON") from None
    if status >= 500 or not isinstance(value, dict):
        raise UpstreamError("upstream_unavailable", f"{url} answered {status}")
    return value


def fetch(http: httpx.Client, url: str, *, method: str = "GET", **kwargs: Any) -> tuple[int, bytes]:
    """The status and body (at most MAX_BYTES) of a call to `url`; UpstreamError when it does not answer."""
    check_url("url", url)
    try:
        with http.stream(method, url, **kwargs) as response:
            body = b""
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_BYTES:
                    raise UpstreamError("upstream_unavailable", f"{url} answered more than {MAX_BYTES} bytes")
            status = response.status_code
    except httpx.TimeoutException:
        raise UpstreamError("upstream_timeout", f"{url} did not answer in time") from None
    except httpx.HTTPError as exc:
        raise UpstreamError("upstream_unavailable", f"{url}: {type(exc).__name__}") from None
    return status, body
