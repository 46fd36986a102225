"""Request objects (JAR, RFC 9101) at /authorize, by value and by reference; every refusal with its
exact error."""
from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
from joserfc.jwk import RSAKey

from tests.idp.conftest import Person, Provider
from tests.idp.signing import DocumentHost, ec_key, host, key_rp  # noqa: F401 (host is a fixture)
from tests.idp.test_authorize_params import redirected_error, refusal
from tests.rp import Browser, callback_params


def unsigned(claims: dict[str, Any]) -> str:
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return "eyJhbGciOiJub25lIn0." + payload + "."


def test_a_signed_request_object_logs_a_citizen_in(provider: Provider, person: Person, browser: Browser) -> None:
    rp = key_rp(provider, ec_key("k1"), request_object_signing_alg="ES256")
    auth, _query, request = rp.signed_authorization()
    url = rp.authorize_url(client_id=rp.client_id, request=request)
    params = callback_params(browser.login(url, person.username, person.password, stop_at=rp.redirect_uri))
    assert params["state"] == auth.state
    token = rp.fetch_token(params["code"], auth.verifier)
    assert rp.validate_id_token(token["id_token"], auth.nonce)["aud"] == rp.client_id


def test_only_the_request_objects_parameters_count(provider: Provider, person: Person, browser: Browser) -> None:
    rp = key_rp(provider, ec_key("k1"))
    auth, _query, request = rp.signed_authorization()
    # RFC 9101 §6.3: the query's state and prompt=none are ignored (prompt=none would end without a login)
    url = rp.authorize_url(client_id=rp.client_id, request=request, state="from-the-query", prompt="none",
                           response_type="code", scope="openid")
    params = callback_params(browser.login(url, person.username, person.password, stop_at=rp.redirect_uri))
    assert params["state"] == auth.state and "code" in params


def test_an_unsigned_request_object_is_refused_unless_the_client_registered_none(
        provider: Provider, browser: Browser) -> None:
    rp = key_rp(provider, ec_key("k1"))
    _auth, query, _request = rp.signed_authorization()
    response = browser.get(rp.authorize_url(client_id=rp.client_id, request=unsigned(query)))
    assert refusal(response) == ("invalid_request_object",
                                 "unsigned request objects are refused: the client did not register none")
    allowed = key_rp(provider, ec_key("k1"), request_object_signing_alg="none")
    _auth, query, _request = allowed.signed_authorization()
    response = browser.get(allowed.authorize_url(client_id=allowed.client_id, request=unsigned(query)))
    assert response.status_code in (302, 303) and "/interaction/" in response.headers["location"]


def test_a_refusal_goes_to_the_querys_registered_redirect_uri(provider: Provider, browser: Browser) -> None:
    rp = key_rp(provider, ec_key("k1"))
    _auth, query, _request = rp.signed_authorization()
    response = browser.get(rp.authorize_url(client_id=rp.client_id, redirect_uri=rp.redirect_uri, state="st-1",
                                            request=unsigned(query)))
    assert redirected_error(provider, response) == (
        "invalid_request_object", "unsigned request objects are refused: the client did not register none")


REFUSALS = [
    ("wrong aud", {"aud": "https://other-op.example.gov.cn"}, "request object aud must be the issuer"),
    ("wrong iss", {"iss": "someone-else"}, "request object iss must be the client_id"),
    ("client_id mismatch", {"client_id": "someone-else"},
     "client_id in the request object does not match the client_id parameter"),
    ("expired", {"exp": -120}, "request object has expired"),
    ("not yet valid", {"nbf": 600}, "request object is not valid yet"),
    ("nested", {"request_uri": "https://rp.example/r"}, "a request object must not hold request or request_uri"),
]


@pytest.mark.parametrize("case, changes, description", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_a_bad_request_object_is_refused(provider: Provider, browser: Browser, case: str,
                                         changes: dict[str, Any], description: str) -> None:
    rp = key_rp(provider, ec_key("k1"))
    _auth, query, _request = rp.signed_authorization()
    now = int(time.time())
    changes = {k: (now + v if k in ("exp", "nbf") else v) for k, v in changes.items()}
    response = browser.get(rp.authorize_url(client_id=rp.client_id, request=rp.request_object(query | changes)))
    assert refusal(response) == ("invalid_request_object", description)


def test_a_request_object_signed_by_another_key_is_refused(provider: Provider, browser: Browser) -> None:
    rp = key_rp(provider, ec_key("k1"))
    _auth, query, _request = rp.signed_authorization()
    forged = rp.request_object(query, key=ec_key("k1"))
    assert refusal(browser.get(rp.authorize_url(client_id=rp.client_id, request=forged))) == (
        "invalid_request_object", "request object signature does not verify")
    unknown = rp.request_object(query, key=ec_key("k7"))
    assert refusal(browser.get(rp.authorize_url(client_id=rp.client_id, request=unknown))) == (
        "invalid_request_object", "request object cannot be verified: no ES256 key of the client matches kid 'k7'")


def test_a_signed_request_object_nested_too_deeply_is_refused(provider: Provider, browser: Browser) -> None:
    from joserfc import jws

    key = ec_key("k1")
    rp = key_rp(provider, key)
    nested = jws.serialize_compact({"alg": "ES256", "kid": "k1"}, b"[" * 3000 + b"]" * 3000, key)
    assert refusal(browser.get(rp.authorize_url(client_id=rp.client_id, request=nested))) == (
        "invalid_request_object", "the request object is not a JSON object")


def test_a_request_object_in_an_unregistered_algorithm_is_refused(provider: Provider, browser: Browser) -> None:
    rsa = RSAKey.generate_key(2048, {"kid": "r1"}, private=True)
    rp = key_rp(provider, ec_key("k1"), request_object_signing_alg="ES256")
    _auth, query, _request = rp.signed_authorization()
    signed = rp.request_object(query, alg="RS256", key=rsa)
    assert refusal(browser.get(rp.authorize_url(client_id=rp.client_id, request=signed))) == (
        "invalid_request_object", "request object alg must be ES256")


def test_request_and_request_uri_together_are_refused(provider: Provider, browser: Browser) -> None:
    rp = key_rp(provider, ec_key("k1"))
    _auth, _query, request = rp.signed_authorization()
    response = browser.get(rp.authorize_url(client_id=rp.client_id, request=request, request_uri="https://x.example/r"))
    assert refusal(response) == ("invalid_request", "request and request_uri must not both be given")


def test_a_registered_request_uri_is_fetched(provider: Provider, person: Person, browser: Browser,
                                             host: DocumentHost) -> None:
    request_uri = host.server.url + "/req/one"
    rp = key_rp(provider, ec_key("k1"), request_uris=[request_uri])
    auth, _query, request = rp.signed_authorization()
    host.documents["one"] = request
    url = rp.authorize_url(client_id=rp.client_id, request_uri=request_uri)
    params = callback_params(browser.login(url, person.username, person.password, stop_at=rp.redirect_uri))
    assert params["state"] == auth.state
    assert rp.fetch_token(params["code"], auth.verifier)["access_token"]


def test_an_unregistered_or_missing_request_uri_is_refused(provider: Provider, browser: Browser,
                                                           host: DocumentHost) -> None:
    registered = host.server.url + "/req/missing"
    rp = key_rp(provider, ec_key("k1"), request_uris=[registered])
    response = browser.get(rp.authorize_url(client_id=rp.client_id, request_uri=host.server.url + "/req/other"))
    assert refusal(response) == ("invalid_request_uri", "request_uri is not one this client registered")
    response = browser.get(rp.authorize_url(client_id=rp.client_id, request_uri=registered))
    assert refusal(response) == ("invalid_request_uri", "request_uri answered HTTP 404, not 200")
