"""Discovery advertises every endpoint and feature that works, and nothing that does not."""
from __future__ import annotations

import httpx

from tests.idp.conftest import Provider


def test_every_advertised_endpoint_answers(provider: Provider) -> None:
    meta = httpx.get(provider.url + "/.well-known/openid-configuration").json()
    assert meta["issuer"] == provider.url
    for field in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri",
                  "introspection_endpoint", "revocation_endpoint", "end_session_endpoint", "registration_endpoint",
                  "device_authorization_endpoint", "pushed_authorization_request_endpoint"):
        assert meta[field].startswith(provider.url)
        assert httpx.get(meta[field]).status_code not in (404, 500)


def test_nothing_unbuilt_is_advertised(provider: Provider) -> None:
    meta = httpx.get(provider.url + "/.well-known/openid-configuration").json()
    for absent in ("id_token_encryption_alg_values_supported", "request_object_encryption_alg_values_supported"):
        assert absent not in meta
    assert meta["grant_types_supported"] == ["authorization_code", "refresh_token", "client_credentials",
                                             "urn:ietf:params:oauth:grant-type:device_code",
                                             "urn:ietf:params:oauth:grant-type:token-exchange",
                                             "urn:ietf:params:oauth:grant-type:jwt-bearer"]
    assert "offline_access" in meta["scopes_supported"]
    assert meta["response_types_supported"] == ["code"]
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["authorization_response_iss_parameter_supported"] is True
