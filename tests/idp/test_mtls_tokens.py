"""RFC 8705 through a mutual-TLS proxy: tls_client_auth and certificate-bound access tokens."""
from __future__ import annotations

import base64
import hashlib
import uuid
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import quote

import httpx
import pytest
from joserfc import jwt

from idp.pki.truststore import CaProfile
from tests.idp.conftest import Person, Provider, serve_provider
from tests.pki import Issued, root
from tests.rp import Browser, RelyingParty, callback_params

REDIRECT = "https://api-client.example.gov.cn/cb"


def header(cert: Issued) -> dict[str, str]:
    return {"X-SSL-Client-Cert": quote(cert.pem.decode())}


@pytest.fixture(scope="module")
def setup(provider: Provider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    work = tmp_path_factory.mktemp("mtls")
    ca = root("Client CA", "ecdsa", work)
    provider.core.trust.add(f"client-ca-{uuid.uuid4().hex[:6]}", ca.pem, CaProfile(revocation="none"))
    cn = f"api-client-{uuid.uuid4().hex[:6]}"
    with serve_provider(provider.backend, work, YIHAO_MTLS_PROXIES="127.0.0.1") as proxied:
        client, secret = proxied.core.clients.create(name="API client", redirect_uris=[REDIRECT], first_party=True,
                                                     tls_client_auth_subject_dn=f"CN={cn}")
        yield {"url": proxied.url, "client": client, "secret": secret, "cert": ca.issue(cn),
               "impostor": root("Other CA", "ecdsa", work).issue(cn), "other": ca.issue("someone-else")}


def tokens(setup: dict[str, Any], person: Person, cert: Issued) -> httpx.Response:
    rp = RelyingParty(setup["url"], setup["client"].client_id, None, REDIRECT)
    auth = rp.authorization()
    code = callback_params(Browser().login(auth.url, person.username, person.password, stop_at=REDIRECT))["code"]
    return httpx.post(rp.metadata["token_endpoint"], headers=header(cert), data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
        "code_verifier": auth.verifier, "client_id": setup["client"].client_id})


def test_a_tls_client_gets_a_token_bound_to_its_certificate(provider: Provider, setup: dict[str, Any],
                                                            person: Person) -> None:
    assert setup["secret"] is None and setup["client"].token_endpoint_auth_method == "tls_client_auth"
    response = tokens(setup, person, setup["cert"])
    assert response.status_code == 200, response.text
    access = response.json()["access_token"]
    claims = jwt.decode(access, RelyingParty(setup["url"], "x", None, REDIRECT).jwks()).claims
    thumbprint = base64.urlsafe_b64encode(hashlib.sha256(setup["cert"].der).digest()).rstrip(b"=").decode()
    assert claims["cnf"] == {"x5t#S256": thumbprint}
    userinfo = f"{setup['url']}/userinfo"
    bearer = {"Authorization": f"Bearer {access}"}
    assert httpx.get(userinfo, headers=bearer | header(setup["cert"])).status_code == 200
    for presented in ({}, header(setup["other"])):  # no certificate, or another one
        refused = httpx.get(userinfo, headers=bearer | presented)
        assert refused.status_code == 401 and 'error="invalid_token"' in refused.headers["www-authenticate"]
    # introspection calls it what the token response called it: a Bearer token, confirmed by the certificate
    resource_server, rs_secret = provider.core.clients.create(name="resource server", redirect_uris=[REDIRECT])
    introspected = httpx.post(f"{setup['url']}/introspect", data={"token": access},
                              auth=(resource_server.client_id, rs_secret or "")).json()
    assert response.json()["token_type"] == "Bearer"
    assert (introspected["active"], introspected["token_type"]) == (True, "Bearer")
    assert introspected["cnf"] == {"x5t#S256": thumbprint}


@pytest.mark.parametrize("which", ["impostor", "other"])
def test_a_certificate_from_an_untrusted_ca_or_of_another_subject_is_invalid_client(
        setup: dict[str, Any], person: Person, which: str) -> None:
    response = tokens(setup, person, setup[which])
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"


def test_discovery_advertises_rfc_8705_only_behind_a_configured_proxy(setup: dict[str, Any], provider: Provider) -> None:
    behind = httpx.get(setup["url"] + "/.well-known/openid-configuration").json()
    plain = httpx.get(provider.url + "/.well-known/openid-configuration").json()
    assert behind["tls_client_certificate_bound_access_tokens"] is True
    assert "tls_client_auth" in behind["token_endpoint_auth_methods_supported"]
    assert plain["tls_client_certificate_bound_access_tokens"] is False
    assert "tls_client_auth" not in plain["token_endpoint_auth_methods_supported"]


def test_the_header_from_an_address_that_is_not_a_proxy_is_ignored(provider: Provider, setup: dict[str, Any],
                                                                  person: Person, tmp_path: Path) -> None:
    with serve_provider(provider.backend, tmp_path, YIHAO_MTLS_PROXIES="10.9.9.9") as elsewhere:
        rp = RelyingParty(elsewhere.url, setup["client"].client_id, None, REDIRECT)
        auth = rp.authorization()
        code = callback_params(Browser().login(auth.url, person.username, person.password, stop_at=REDIRECT))["code"]
        response = httpx.post(rp.metadata["token_endpoint"], headers=header(setup["cert"]), data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
            "code_verifier": auth.verifier, "client_id": setup["client"].client_id})
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"
