"""Pushed authorization requests (RFC 9126), signed (RFC 9101) and authenticated with private_key_jwt,
as a relying party sees them; every refusal with its exact error."""
from __future__ import annotations

import base64
import json
import time
from urllib.parse import parse_qsl, urlsplit

import httpx
from authlib.oauth2.rfc7523 import private_key_jwt_sign
from joserfc import jwt

from tests.idp.conftest import Person, Provider, RpFactory, WorkerFactory
from tests.idp.signing import ec_key, key_rp, public_set
from tests.idp.test_authorize_params import redirected_error, refusal
from tests.rp import Browser, DPoPKey, PrivateKeyAssertion, RelyingParty, callback_params

PAR_PREFIX = "urn:ietf:params:oauth:request_uri:"


def test_a_signed_pushed_request_logs_a_citizen_in(provider: Provider, person: Person, browser: Browser) -> None:
    rp = key_rp(provider, ec_key("k1"), request_object_signing_alg="ES256",
                require_pushed_authorization_requests=True)
    auth, _query, request = rp.signed_authorization()
    pushed = rp.push(request=request)
    assert pushed.status_code == 201 and pushed.headers["cache-control"] == "no-store"
    body = pushed.json()
    assert body["request_uri"].startswith(PAR_PREFIX) and body["expires_in"] == provider.core.settings.par_ttl
    url = rp.authorize_url(client_id=rp.client_id, request_uri=body["request_uri"])
    params = callback_params(browser.login(url, person.username, person.password, stop_at=rp.redirect_uri))
    assert params["state"] == auth.state and params["iss"] == provider.url
    token = rp.fetch_token(params["code"], auth.verifier)
    assert rp.validate_id_token(token["id_token"], auth.nonce, token["access_token"])["aud"] == rp.client_id


def test_plain_parameters_can_be_pushed_by_a_secret_client(provider: Provider, make_rp: RpFactory,
                                                          person: Person, browser: Browser) -> None:
    rp = make_rp()
    auth = rp.authorization()
    pushed = httpx.post(rp.metadata["pushed_authorization_request_endpoint"],
                        data=dict(parse_qsl(urlsplit(auth.url).query)), auth=(rp.client_id, rp.client_secret or ""))
    assert pushed.status_code == 201
    url = rp.authorize_url(client_id=rp.client_id, request_uri=pushed.json()["request_uri"])
    params = callback_params(browser.login(url, person.username, person.password, stop_at=rp.redirect_uri))
    assert rp.fetch_token(params["code"], auth.verifier)["access_token"]


def test_a_request_uri_is_single_use_across_workers(provider: Provider, another_worker: WorkerFactory,
                                                    browser: Browser) -> None:
    rp = key_rp(provider, ec_key("k1"))
    _auth, _query, request = rp.signed_authorization()
    request_uri = rp.push(request=request).json()["request_uri"]
    first = browser.get(rp.authorize_url(client_id=rp.client_id, request_uri=request_uri))
    assert first.status_code in (302, 303) and "/interaction/" in first.headers["location"]
    again = httpx.get(another_worker() + "/authorize", params={"client_id": rp.client_id, "request_uri": request_uri})
    assert refusal(again) == ("invalid_request_uri", "request_uri has expired or has already been used")


def test_a_request_uri_expires(provider: Provider, another_worker: WorkerFactory) -> None:
    worker = another_worker(par_ttl=1)
    rp = key_rp(provider, ec_key("k1"))
    # the same deployment, reached at another address: the assertion's aud is still the deployment's
    rp.assertion = PrivateKeyAssertion(token_endpoint=provider.url + "/par", alg="ES256", headers={"kid": "k1"})
    _auth, query, _request = rp.signed_authorization()
    with rp.oauth() as client:
        pushed = client.post(worker + "/par", data=query, auth=client.client_auth("private_key_jwt"))
    assert pushed.json()["expires_in"] == 1
    time.sleep(1.3)
    late = httpx.get(worker + "/authorize", params={"client_id": rp.client_id, "request_uri": pushed.json()["request_uri"]})
    assert refusal(late) == ("invalid_request_uri", "request_uri has expired or has already been used")


def test_a_request_uri_pushed_by_another_client_is_refused(provider: Provider, browser: Browser) -> None:
    rp, other = key_rp(provider, ec_key("k1")), key_rp(provider, ec_key("k2"))
    _auth, _query, request = rp.signed_authorization()
    request_uri = rp.push(request=request).json()["request_uri"]
    response = browser.get(other.authorize_url(client_id=other.client_id, request_uri=request_uri))
    assert refusal(response) == ("invalid_request_uri", "request_uri was pushed by another client")


def test_a_client_that_requires_par_cannot_skip_it(provider: Provider, browser: Browser) -> None:
    rp = key_rp(provider, ec_key("k1"), require_pushed_authorization_requests=True)
    auth = rp.authorization(state="st-1")
    assert redirected_error(provider, browser.get(auth.url)) == (
        "invalid_request", "this client must push its authorization requests to the pushed authorization "
                           "request endpoint first")


def test_the_global_setting_requires_par_of_every_client(provider: Provider, make_rp: RpFactory,
                                                         another_worker: WorkerFactory) -> None:
    worker = another_worker(require_par=True)
    assert httpx.get(worker + "/.well-known/openid-configuration").json()["require_pushed_authorization_requests"]
    rp = make_rp()
    auth = rp.authorization(state="st-1")
    response = httpx.get(worker + "/authorize?" + auth.url.split("?", 1)[1])
    params = callback_params(response)
    assert params["error"] == "invalid_request" and "must push" in params["error_description"]


def test_par_needs_client_authentication(provider: Provider, make_rp: RpFactory) -> None:
    rp = make_rp()
    auth = rp.authorization()
    query = dict(parse_qsl(urlsplit(auth.url).query))
    response = httpx.post(provider.url + "/par", data=query | {"client_secret": "wrong"})
    assert response.json()["error"] == "invalid_client"
    assert response.status_code in (400, 401)


def test_par_validates_the_request_as_authorize_would(provider: Provider) -> None:
    rp = key_rp(provider, ec_key("k1"))
    _auth, query, _request = rp.signed_authorization()
    bad_redirect = rp.push(**(query | {"redirect_uri": "https://evil.example/cb"}))
    assert bad_redirect.status_code == 400
    assert bad_redirect.json() == {"error": "invalid_request",
                                   "error_description": "redirect_uri does not exactly match a registered redirect URI"}
    nested = rp.push(**(query | {"request_uri": PAR_PREFIX + "x"}))
    assert nested.json() == {"error": "invalid_request", "error_description":
                             "request_uri must not be sent to the pushed authorization request endpoint"}
    other = rp.push(**(query | {"client_id": "someone-else"}))
    assert other.json()["error"] == "invalid_client"  # the assertion names another client than the body


def test_an_unsigned_pushed_request_object_is_refused(provider: Provider) -> None:
    rp = key_rp(provider, ec_key("k1"))
    _auth, query, _request = rp.signed_authorization()
    payload = base64.urlsafe_b64encode(json.dumps(query).encode()).rstrip(b"=").decode()
    response = rp.push(request="eyJhbGciOiJub25lIn0." + payload + ".")
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_request_object", "error_description":
                               "unsigned request objects are refused: the client did not register none"}


def test_discovery_advertises_signed_requests_and_signing_clients(provider: Provider) -> None:
    meta = httpx.get(provider.url + "/.well-known/openid-configuration").json()
    assert meta["pushed_authorization_request_endpoint"] == provider.url + "/par"
    assert meta["require_pushed_authorization_requests"] is False
    assert meta["request_parameter_supported"] is meta["request_uri_parameter_supported"] is True
    assert meta["require_request_uri_registration"] is True
    assert meta["request_object_signing_alg_values_supported"] == ["RS256", "PS256", "ES256", "EdDSA", "none"]
    for endpoint in ("token", "revocation"):
        assert meta[f"{endpoint}_endpoint_auth_methods_supported"] == [
            "client_secret_basic", "client_secret_post", "private_key_jwt", "client_secret_jwt", "none"]
    assert meta["introspection_endpoint_auth_methods_supported"] == [
        "client_secret_basic", "client_secret_post", "private_key_jwt", "client_secret_jwt"]
    assert meta["token_endpoint_auth_signing_alg_values_supported"] == ["RS256", "PS256", "ES256", "EdDSA", "HS256"]


def test_a_self_registered_signing_client_pushes_a_signed_request(provider: Provider, another_worker: WorkerFactory,
                                                                  person: Person, browser: Browser) -> None:
    """RFC 7591 with the fields of RFC 7523, 9101 and 9126: the app registers its keys itself."""
    open_at = another_worker(registration="open")
    key = ec_key("app-1")
    redirect = "https://tax.example.gov.cn/cb"
    registered = httpx.post(open_at + "/register", json={
        "client_name": "税务 Tax", "redirect_uris": [redirect], "token_endpoint_auth_method": "private_key_jwt",
        "jwks": public_set(key), "token_endpoint_auth_signing_alg": "ES256", "request_object_signing_alg": "ES256",
        "require_pushed_authorization_requests": True})
    assert registered.status_code == 201, registered.text
    body = registered.json()
    assert "client_secret" not in body and body["jwks"] == public_set(key)
    assert body["require_pushed_authorization_requests"] is True and body["request_object_signing_alg"] == "ES256"
    rp = RelyingParty(provider.url, body["client_id"], None, redirect, key=key,
                      assertion=PrivateKeyAssertion(alg="ES256", headers={"kid": "app-1"}))
    auth, _query, request = rp.signed_authorization()
    pushed = rp.push(request=request)
    assert pushed.status_code == 201, pushed.text
    url = rp.authorize_url(client_id=rp.client_id, request_uri=pushed.json()["request_uri"])
    params = callback_params(browser.login(url, person.username, person.password, stop_at=rp.redirect_uri))
    assert rp.fetch_token(params["code"], auth.verifier)["access_token"]


def test_registration_refuses_unfitting_signing_metadata(another_worker: WorkerFactory) -> None:
    open_at = another_worker(registration="open")
    response = httpx.post(open_at + "/register", json={
        "client_name": "K", "redirect_uris": ["https://k.example.gov.cn/cb"],
        "token_endpoint_auth_method": "private_key_jwt"})
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_client_metadata", "error_description":
                               "private_key_jwt needs the client's public keys: jwks or jwks_uri"}
    response = httpx.post(open_at + "/register", json={
        "client_name": "K", "redirect_uris": ["https://k.example.gov.cn/cb"], "jwks_uri": "https://169.254.169.254/k"})
    assert response.json() == {"error": "invalid_client_metadata", "error_description":
                               "jwks_uri 'https://169.254.169.254/k' points to a private address (169.254.169.254), "
                               "which this provider does not call"}


def test_a_new_app_registers_itself_pushes_a_signed_request_and_gets_dpop_bound_tokens_for_userinfo(
        provider: Provider, another_worker: WorkerFactory, person: Person, browser: Browser) -> None:
    """Issue 4's whole path for a high-value app: RFC 7591 registration with its keys and
    dpop_bound_access_tokens, a signed pushed request (RFC 9101, 9126), private_key_jwt at the token
    endpoint with a DPoP proof (RFC 9449), and userinfo with the DPoP-bound access token."""
    open_at = another_worker(registration="open")
    key = ec_key("tax-1")
    redirect = "https://tax.example.gov.cn/cb"
    registered = httpx.post(open_at + "/register", json={
        "client_name": "税务 Tax", "redirect_uris": [redirect], "token_endpoint_auth_method": "private_key_jwt",
        "jwks": public_set(key), "token_endpoint_auth_signing_alg": "ES256", "request_object_signing_alg": "ES256",
        "require_pushed_authorization_requests": True, "dpop_bound_access_tokens": True})
    assert registered.status_code == 201, registered.text
    assert registered.json()["dpop_bound_access_tokens"] is True
    client_id = registered.json()["client_id"]
    rp = RelyingParty(provider.url, client_id, None, redirect, key=key,
                      assertion=PrivateKeyAssertion(alg="ES256", headers={"kid": "tax-1"}))
    auth, _query, request = rp.signed_authorization()
    pushed = rp.push(request=request)
    assert pushed.status_code == 201, pushed.text
    url = rp.authorize_url(client_id=client_id, request_uri=pushed.json()["request_uri"])
    params = callback_params(browser.login(url, person.username, person.password, stop_at=rp.redirect_uri))
    assert params["state"] == auth.state

    token_endpoint = rp.metadata["token_endpoint"]
    form = {"grant_type": "authorization_code", "code": params["code"], "redirect_uri": redirect,
            "code_verifier": auth.verifier, "client_id": client_id,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}

    def assertion() -> str:  # a fresh one per request: its jti is single use
        return private_key_jwt_sign(key, client_id=client_id, token_endpoint=token_endpoint, alg="ES256",
                                    header={"kid": "tax-1"}, expires_in=60)

    # this client's tokens are DPoP-bound: without a proof the code is refused and not spent
    bare = httpx.post(token_endpoint, data=form | {"client_assertion": assertion()})
    assert (bare.status_code, bare.json()["error"]) == (400, "invalid_dpop_proof")
    dpop = DPoPKey("ES256")
    issued = dpop.post(token_endpoint, form | {"client_assertion": assertion()})
    if issued.status_code == 400 and issued.json().get("error") == "invalid_client":  # the nonce retry reused
        issued = dpop.post(token_endpoint, form | {"client_assertion": assertion()})  # a single-use assertion
    assert issued.status_code == 200, issued.text
    tokens = issued.json()
    assert tokens["token_type"] == "DPoP"
    rp.validate_id_token(tokens["id_token"], auth.nonce, tokens["access_token"])
    claims = jwt.decode(tokens["access_token"], rp.jwks()).claims
    assert claims["cnf"] == {"jkt": dpop.jkt} and claims["client_id"] == client_id

    userinfo = dpop.get(rp.metadata["userinfo_endpoint"], tokens["access_token"])
    assert userinfo.status_code == 200, userinfo.text
    assert userinfo.json()["sub"] == claims["sub"]
    as_bearer = httpx.get(rp.metadata["userinfo_endpoint"],
                          headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert as_bearer.status_code == 401
