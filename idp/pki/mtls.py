"""Mutual TLS at a TLS-terminating proxy: the client certificate it verified, forwarded in a header,
believed only when the request comes from one of the configured proxy addresses (anyone else
could send the header)."""
from __future__ import annotations

import base64
import binascii
import ipaddress
from urllib.parse import unquote

from cryptography import x509
from starlette.requests import Request

from idp.pki.truststore import load_certificate


def client_certificate(request: Request) -> str | None:
    """The forwarded client certificate (PEM or base64 DER text), or None."""
    settings = request.app.state.core.settings
    if not settings.mtls_proxies or request.client is None:
        return None
    try:
        peer = ipaddress.ip_address(request.client.host)
    except ValueError:
        return None
    if not any(peer in network for network in settings.mtls_proxies):
        return None
    value = request.headers.get(settings.mtls_header, "").strip()
    return unquote(value) if value else None


def forwarded_certificate(request: Request) -> x509.Certificate | None:
    """The forwarded client certificate, parsed; None when absent, untrusted or unreadable."""
    text = client_certificate(request)
    if text is None:
        return None
    try:
        return load_certificate(text.encode() if "-----BEGIN" in text else base64.b64decode(text, validate=True))
    except (ValueError, binascii.Error):
        return None
