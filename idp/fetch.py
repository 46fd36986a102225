"""Fetching documents a client points at (`jwks_uri`, `request_uri`): https only, no redirects,
bounded in time and size, so a slow or huge answer cannot hold a worker.

A client chooses these URLs, so they must not reach what only the provider can reach: loopback
(plain http included) only when the provider itself runs on loopback (a laptop, the tests), and
never link-local (cloud metadata services), multicast or reserved addresses. Private ranges stay
allowed: relying parties on a government intranet are expected. The name is resolved before the
request; a name that re-resolves between the check and the connection (DNS rebinding) is not
caught here — production deployments should also fetch through an egress proxy.
"""
from __future__ import annotations

import ipaddress
import socket
import time
from urllib.parse import urlsplit

import httpx

from idp.settings import is_loopback_host


class FetchError(Exception):
    """The document could not be had; the message says why, without the body."""


def _unreachable_address(host: str, allow_loopback: bool) -> str | None:
    """Why `host` must not be fetched from, or None."""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)}
    except (socket.gaierror, UnicodeError):
        return "names a host that cannot be resolved"
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if ip.is_loopback and allow_loopback:
            continue
        if ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_unspecified or ip.is_reserved:
            return "resolves to a loopback, link-local or reserved address"
    return None


class Fetcher:
    """One connection pool per worker; `get` is synchronous and thread-safe."""

    def __init__(self, timeout: float, max_bytes: int, *, allow_loopback: bool = False,
                 client: httpx.Client | None = None) -> None:
        self._timeout = timeout
        self._max_bytes = max_bytes
        self._allow_loopback = allow_loopback
        self._http = client or httpx.Client(timeout=timeout, follow_redirects=False,
                                            headers={"User-Agent": "yihao"})

    def get(self, uri: str, accept: str) -> bytes:
        """The body of a 200 answer to GET `uri`, at most `max_bytes`, within the timeout overall."""
        parts = urlsplit(uri)
        plain_loopback = parts.scheme == "http" and self._allow_loopback and is_loopback_host(parts.hostname)
        if not parts.hostname or not (parts.scheme == "https" or plain_loopback):
            raise FetchError("must use https")
        refused = _unreachable_address(parts.hostname, self._allow_loopback)
        if refused is not None:
            raise FetchError(refused)
        deadline = time.monotonic() + self._timeout  # httpx times each read; a trickle must end too
        body = bytearray()
        try:
            with self._http.stream("GET", uri, headers={"Accept": accept}) as response:
                if response.status_code != 200:
                    raise FetchError(f"answered HTTP {response.status_code}, not 200")
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > self._max_bytes:
                    raise FetchError(f"is larger than {self._max_bytes} bytes")
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > self._max_bytes:
                        raise FetchError(f"is larger than {self._max_bytes} bytes")
                    if time.monotonic() > deadline:
                        raise FetchError(f"did not answer within {self._timeout:g} s")
        except httpx.TimeoutException:
            raise FetchError(f"did not answer within {self._timeout:g} s") from None
        except httpx.HTTPError as exc:
            raise FetchError(f"could not be fetched ({type(exc).__name__})") from None
        return bytes(body)

    def close(self) -> None:
        self._http.close()
