"""Relying parties that sign: private_key_jwt clients, their keys, and a server publishing documents."""
from __future__ import annotations

import uuid
from typing import Any, Iterator

import pytest
from joserfc.jwk import ECKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.idp.conftest import Provider
from tests.live import ThreadServer, free_port
from tests.rp import PrivateKeyAssertion, RelyingParty


def ec_key(kid: str) -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": kid}, private=True)


def public_set(*keys: Any) -> dict[str, Any]:
    return {"keys": [k.as_dict(private=False) for k in keys]}


def key_rp(provider: Provider, key: Any, alg: str = "ES256", scope: str = "openid profile email phone",
           **metadata: Any) -> RelyingParty:
    """A private_key_jwt client registered with `key`'s public half (unless a jwks_uri is given)."""
    redirect = f"https://rp-{uuid.uuid4().hex[:8]}.example.gov.cn/cb"
    if "jwks_uri" not in metadata:
        metadata.setdefault("jwks", public_set(key))
    client, secret = provider.core.clients.create(
        name="签名应用 Key RP", redirect_uris=[redirect], token_endpoint_auth_method="private_key_jwt",
        grant_types=["authorization_code", "refresh_token", "client_credentials"], session_refresh_tokens=True,
        **metadata)
    assert secret is None  # it proves itself with its key
    return RelyingParty(provider.url, client.client_id, None, redirect, scope=scope,
                        assertion=PrivateKeyAssertion(alg=alg, headers={"kid": key.kid}), key=key)


class DocumentHost:
    """The client's own server: publishes its key set at /jwks and request objects at /req/{name};
    counts how often the key set is fetched."""

    def __init__(self) -> None:
        self.keys: dict[str, Any] = {"keys": []}
        self.documents: dict[str, str] = {}
        self.hits = 0
        self.body: bytes | None = None
        app = Starlette(routes=[Route("/jwks", self.jwks), Route("/req/{name}", self.request_object),
                                Route("/healthz", lambda r: Response("ok"))])
        self.server = ThreadServer(app, free_port())
        self.url = self.server.url + "/jwks"

    async def jwks(self, request: Request) -> Response:
        self.hits += 1
        if self.body is not None:
            return Response(self.body, media_type="application/json")
        return JSONResponse(self.keys)

    async def request_object(self, request: Request) -> Response:
        body = self.documents.get(request.path_params["name"])
        return Response(body or "", status_code=200 if body else 404, media_type="application/oauth-authz-req+jwt")


@pytest.fixture
def host() -> Iterator[DocumentHost]:
    served = DocumentHost()
    with served.server:
        yield served
