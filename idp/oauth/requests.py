"""The authlib seam: a request adapter built from what Starlette already parsed (read once)."""
from __future__ import annotations

from collections import defaultdict
from functools import lru_cache
from typing import Iterable, Mapping

from authlib.common.security import is_secure_transport
from authlib.oauth2.rfc6749 import OAuth2Payload, OAuth2Request
from authlib.oauth2.rfc6749.errors import InsecureTransportError
from cryptography import x509


def _origin(uri: str) -> str:
    """scheme://host[:port] of an absolute URI."""
    end = uri.find("/", uri.find("//") + 2)
    return uri if end < 0 else uri[:end]


@lru_cache(maxsize=64)
def _secure_origin(origin: str) -> bool:
    """authlib's transport rule (https, or http on loopback) for a scheme://host[:port] origin."""
    return is_secure_transport(origin + "/")


class Payload(OAuth2Payload):
    def __init__(self, items: Iterable[tuple[str, str]]) -> None:
        datalist: defaultdict[str, list] = defaultdict(list)
        for key, value in items:
            datalist[key].append(value)
        self._datalist = datalist
        self._data = {key: values[0] for key, values in datalist.items()}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list]:
        return self._datalist


class OAuthRequest(OAuth2Request):
    """An OAuth2Request over parameters the handler has read; `form` is the POST body only."""

    def __init__(self, method: str, uri: str, headers: Mapping[str, str], query: Iterable[tuple[str, str]],
                 form: Iterable[tuple[str, str]] = ()) -> None:
        # OAuth2Request.__init__, with its transport check made once per origin rather than per request
        # (it parses the URI, and an IP address, every time); tests pin that the attributes are the same.
        if not _secure_origin(_origin(uri)):
            raise InsecureTransportError()
        self.method, self.uri, self.headers, self._body = method, uri, headers, None
        self.client = self.auth_method = self.user = self.authorization_code = self.refresh_token = None
        self.credential = self._scope = None
        args, body = Payload(query), Payload(form)
        self._args, self._form = args.data, body.data
        self.payload = body if method == "POST" else args
        self.dpop_jkt: str | None = None  # thumbprint of the request's verified DPoP proof (RFC 9449)
        self.client_certificate: x509.Certificate | None = None  # RFC 8705: mutual TLS at a trusted proxy

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form
