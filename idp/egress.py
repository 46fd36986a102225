"""The egress filter: URLs a client registered itself may not make the provider call into its own network.

Self-registered metadata is untrusted input. A back-channel logout URI or a sector_identifier_uri
pointing at 127.0.0.1, 10.0.0.0/8 or 169.254.169.254 would turn the provider into a proxy into the
network it runs in (SSRF). Such addresses are refused unless an administrator allows the network
(`YIHAO_EGRESS_ALLOW`) or, in the demo, for loopback. Names are resolved and every address checked.
"""
from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from idp.settings import Settings

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
LOCAL_NAMES = {"localhost", "localhost.localdomain"}


class EgressError(Exception):
    """A URL the provider will not call, or whose answer it will not use; the message says why."""


def _kind(address: Address) -> str:
    for kind in ("loopback", "private", "link_local", "multicast", "reserved", "unspecified"):
        if getattr(address, f"is_{kind}"):
            return kind.replace("_", "-")
    return "non-public"


def addresses(host: str) -> list[Address]:
    """The addresses `host` stands for: itself if literal, else what the resolver says (may be none)."""
    host = host.strip("[]")
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    if host.lower() in LOCAL_NAMES:
        return [ipaddress.ip_address("127.0.0.1")]
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        return []
    return list(dict.fromkeys(ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos))


@dataclass(frozen=True)
class Egress:
    allow: tuple[Network, ...] = ()
    loopback: bool = False  # the demo's relying parties live on this machine

    @classmethod
    def from_settings(cls, settings: Settings) -> Egress:
        return cls(tuple(settings.egress_allow), settings.demo)

    def permits(self, address: Address) -> bool:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # ::ffff:10.0.0.1 is 10.0.0.1
        if self.loopback and address.is_loopback:
            return True
        return address.is_global or any(address in network for network in self.allow)

    def check(self, setting: str, url: str, *, must_resolve: bool) -> None:
        """Refuse `url` if its host is, or resolves to, an address this provider does not call."""
        host = urlsplit(url).hostname or ""
        found = addresses(host)
        if not found and must_resolve:
            raise EgressError(f"{setting} host {host!r} does not resolve")
        for address in found:
            if not self.permits(address):
                raise EgressError(f"{setting} {url!r} points to a {_kind(address)} address ({address}), "
                                  "which this provider does not call")

    def fetch(self, setting: str, url: str, *, max_bytes: int, timeout: float) -> bytes:
        """GET `url` through the filter: no redirects, 200 only, at most `max_bytes`, within `timeout`."""
        self.check(setting, url, must_resolve=True)
        try:
            with httpx.Client(timeout=timeout, follow_redirects=False) as http, http.stream("GET", url) as response:
                if response.status_code != 200:
                    raise EgressError(f"{setting} {url!r} answered HTTP {response.status_code}, not 200")
                body = b""
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > max_bytes:
                        raise EgressError(f"{setting} {url!r} is larger than {max_bytes} bytes")
                return body
        except httpx.TimeoutException:
            raise EgressError(f"{setting} {url!r} did not answer within {timeout:g} s") from None
        except httpx.HTTPError as exc:
            raise EgressError(f"{setting} {url!r} could not be fetched ({type(exc).__name__})") from None
