"""client_credentials (RFC 6749 §4.4) with RFC 9068 access tokens and resource indicators (RFC 8707)."""
from __future__ import annotations

import uuid
import warnings
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from idp.clients import ClientInputError
from tests.idp.conftest import Provider

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from authlib.integrations.httpx_client import OAuth2Client
from authlib.integrations.base_client.errors import OAuthError

API = "https://api.fuzhou.example.gov.cn/records"


def service(provider: Provider, **metadata: Any) -> OAuth2Client:
    metadata.setdefault("scope", "records.read records.write")
    client, secret = provider.core.clients.create(name="排队叫号服务 Queue service", redirect_uris=[],
                                                  grant_types=["client_credentials"], **metadata)
    return OAuth2Client(client.client_id, secret, token_endpoint_auth_method="client_secret_basic")


def grant(provider: Provider, client: OAuth2Client, **params: str) -> dict[str, Any]:
    return dict(client.fetch_token(provider.url + "/token", grant_type="client_credentials", **params))


def validate(provider: Provider, access_token: str, audience: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """As a resource server does (RFC 9068 §4): typ, signature against the JWKS, iss, aud, exp."""
    keys = KeySet.import_key_set(httpx.get(provider.url + "/jwks").json())
    decoded = jwt.decode(access_token, keys, algorithms=["RS256", "ES256", "EdDSA"])
    assert decoded.header["typ"] == "at+jwt"
    jwt.JWTClaimsRegistry(iss={"essential": True, "value": provider.url}, aud={"essential": True, "value": audience},
                          exp={"essential": True}, iat={"essential": True}, jti={"essential": True},
                          client_id={"essential": True}, sub={"essential": True}).validate(decoded.claims)
    return dict(decoded.header), dict(decoded.claims)


def test_a_service_gets_a_jwt_access_token_for_itself(provider: Provider) -> None:
    client = service(provider, resources=[API], default_resource=API)
    token = grant(provider, client, scope="records.read")
    assert token["token_type"] == "Bearer" and token["expires_in"] == 600 and "refresh_token" not in token
    header, claims = validate(provider, token["access_token"], API)
    assert header["alg"] == "RS256"
    assert claims["sub"] == claims["client_id"] == client.client_id
    assert claims["scope"] == "records.read" and claims["exp"] - claims["iat"] == 600
    assert "ref" not in claims and "gid" not in claims  # no person behind it


def test_without_a_scope_the_client_gets_all_of_its_api_scopes(provider: Provider) -> None:
    token = grant(provider, service(provider))
    assert token["scope"] == "records.read records.write"
    assert validate(provider, token["access_token"], provider.url)[1]["aud"] == provider.url


@pytest.mark.parametrize("alg", ["ES256", "RS256", "EdDSA"])
def test_the_clients_registered_algorithm_signs_its_tokens(provider: Provider, alg: str) -> None:
    token = grant(provider, service(provider, access_token_signed_response_alg=alg))
    assert validate(provider, token["access_token"], provider.url)[0]["alg"] == alg


@pytest.mark.parametrize("scope", ["records.delete", "openid", "records.read offline_access"])
def test_scopes_beyond_the_clients_own_are_invalid_scope(provider: Provider, scope: str) -> None:
    with pytest.raises(OAuthError) as raised:
        grant(provider, service(provider), scope=scope)
    assert raised.value.error == "invalid_scope"


def test_resource_indicators_choose_the_audience(provider: Provider) -> None:
    other = "https://api.fuzhou.example.gov.cn/payments"
    client = service(provider, resources=[API, other], default_resource=API)
    assert validate(provider, grant(provider, client, resource=other)["access_token"], other)[1]["aud"] == other
    with pytest.raises(OAuthError) as raised:
        grant(provider, client, resource="https://elsewhere.example.com/")
    assert raised.value.error == "invalid_target"


def test_the_grant_needs_the_grant_type_and_the_right_secret(provider: Provider) -> None:
    code_client, secret = provider.core.clients.create(name="web app", redirect_uris=["https://a.example.gov.cn/cb"])
    response = httpx.post(provider.url + "/token", data={"grant_type": "client_credentials"},
                          auth=(code_client.client_id, secret or ""))
    assert response.status_code == 400 and response.json()["error"] == "unauthorized_client"
    client = service(provider)
    wrong = httpx.post(provider.url + "/token", data={"grant_type": "client_credentials"},
                       auth=(client.client_id, "x" * 43))
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    assert wrong.headers["www-authenticate"].startswith("Basic")


def test_a_clients_own_token_is_not_a_userinfo_token(provider: Provider) -> None:
    token = grant(provider, service(provider))
    response = httpx.get(provider.url + "/userinfo", headers={"Authorization": f"Bearer {token['access_token']}"})
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_public_clients_cannot_register_for_client_credentials(provider: Provider) -> None:
    with pytest.raises(ClientInputError, match="public client cannot use client_credentials"):
        provider.core.clients.create(name=f"app {uuid.uuid4().hex[:6]}", redirect_uris=["https://a.example.gov.cn/cb"],
                                     public=True, grant_types=["authorization_code", "client_credentials"])


def test_a_person_grant_for_an_api_is_audience_restricted(provider: Provider, make_rp: Any, person: Any) -> None:
    from tests.idp.test_refresh import offline_rp
    from tests.rp import Browser, callback_params, refresh

    payments = "https://api.fuzhou.example.gov.cn/payments"
    rp = offline_rp(make_rp, resources=[API, payments])
    browser = Browser()
    try:
        auth = rp.authorization(resource=API)
        params = callback_params(browser.login(auth.url, person.username, person.password, stop_at=rp.redirect_uri))
        tokens = rp.fetch_token(params["code"], auth.verifier)
        assert validate(provider, tokens["access_token"], API)[1]["aud"] == API
        assert rp.userinfo(tokens["access_token"]).status_code == 401  # a token for the API, not for userinfo
        renewed = refresh(rp, tokens["refresh_token"])
        assert validate(provider, renewed["access_token"], API)[1]["aud"] == API
        with pytest.raises(OAuthError) as raised:  # only what the grant covered
            refresh(rp, renewed["refresh_token"], resource=payments)
        assert raised.value.error == "invalid_target"
        assert refresh(rp, renewed["refresh_token"])["access_token"]  # the refusal spent nothing
        refused = browser.get(rp.authorization(resource="https://elsewhere.example.com/").url)
        assert callback_params(refused)["error"] == "invalid_target"
    finally:
        browser.close()
