"""UserInfo (OIDC Core §5.3) as a relying party sees it: how the token travels, what comes back."""
from __future__ import annotations

import base64
import json
from typing import Iterator

import httpx
import pytest

from realname.pii import IdNumber
from tests.idp.conftest import Person, Provider, RpFactory, WorkerFactory
from tests.idp.realname_helpers import registered_citizen
from tests.rp import Browser, RelyingParty, callback_params

# RFC 9449 §7.1: without a token, both schemes are offered
NO_TOKEN = 'Bearer realm="yihao", DPoP algs="ES256 RS256 PS256 EdDSA"'
INVALID_TOKEN = ('Bearer realm="yihao", error="invalid_token", '
                 'error_description="the access token is invalid, expired or revoked"')
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def http(provider: Provider) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=provider.url, timeout=30) as client:
        yield client


def access_token(rp: RelyingParty, person: Person, browser: Browser, scope: str = "openid profile email phone") -> str:
    rp.scope = scope
    auth = rp.authorization()
    params = callback_params(browser.login(auth.url, person.username, person.password, stop_at=rp.redirect_uri))
    response = rp.exchange(params["code"], auth.verifier)
    assert response.status_code == 200
    return response.json()["access_token"]


@pytest.fixture
def token(make_rp: RpFactory, person: Person, browser: Browser) -> str:
    return access_token(make_rp(first_party=True), person, browser)


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def test_get_with_the_bearer_header_returns_the_claims_of_every_granted_scope(http: httpx.Client, person: Person,
                                                                               token: str) -> None:
    response = http.get("/userinfo", headers=bearer(token))
    body = response.json()
    assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
    assert set(body) == {"sub", "name", "preferred_username", "updated_at", "email", "email_verified"}
    assert (body["name"], body["preferred_username"], body["email"], body["email_verified"]) == (
        "李四", person.username, f"{person.username}@example.gov.cn", True)


def test_post_with_the_token_in_the_form_body_works_like_get(http: httpx.Client, token: str) -> None:
    posted = http.post("/userinfo", data={"access_token": token})
    assert posted.status_code == 200
    assert posted.json() == http.get("/userinfo", headers=bearer(token)).json()


def test_post_with_the_bearer_header_works(http: httpx.Client, token: str) -> None:
    response = http.post("/userinfo", headers=bearer(token))
    assert response.status_code == 200 and "sub" in response.json()


def test_a_token_in_both_the_header_and_the_body_is_400_invalid_request(http: httpx.Client, token: str) -> None:
    response = http.post("/userinfo", data={"access_token": token}, headers=bearer(token))
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_request", "error_description": "the access token must be sent one way only"}


def test_a_repeated_access_token_in_the_body_is_400_invalid_request(http: httpx.Client, token: str) -> None:
    response = http.post("/userinfo", content=f"access_token={token}&access_token={token}", headers=FORM)
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_request", "error_description": "parameter access_token is repeated"}


def test_a_body_with_invalid_utf8_is_400_invalid_request(http: httpx.Client) -> None:
    response = http.post("/userinfo", content=b"access_token=\xff\xfe", headers=FORM)
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_request", "error_description": "the request body is not valid UTF-8"}


@pytest.mark.parametrize("value", ["not-a-token", "a.b.c", "eyJhbGciOiJub25lIn0.e30.", "é" * 20000])
def test_a_malformed_bearer_token_is_401_invalid_token(http: httpx.Client, value: str) -> None:
    response = http.get("/userinfo", headers={"Authorization": f"Bearer {value}".encode()})
    assert response.status_code == 401 and "Traceback" not in response.text
    assert response.json() == {"error": "invalid_token", "error_description": "the access token is invalid, expired or revoked"}
    assert response.headers["www-authenticate"] == INVALID_TOKEN


def test_an_id_token_is_not_accepted_as_an_access_token(http: httpx.Client, make_rp: RpFactory, person: Person,
                                                        browser: Browser) -> None:
    rp = make_rp(first_party=True)
    auth = rp.authorization()
    params = callback_params(browser.login(auth.url, person.username, person.password, stop_at=rp.redirect_uri))
    id_token = rp.exchange(params["code"], auth.verifier).json()["id_token"]
    response = http.get("/userinfo", headers=bearer(id_token))
    assert response.status_code == 401 and response.headers["www-authenticate"] == INVALID_TOKEN


def test_an_access_token_in_the_query_string_is_not_accepted(http: httpx.Client, token: str) -> None:
    response = http.get("/userinfo", params={"access_token": token})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == NO_TOKEN  # RFC 6750 §3.1: no error code


def test_no_token_at_all_is_401_without_an_error_code(http: httpx.Client) -> None:
    response = http.get("/userinfo", headers={"Authorization": "Basic Zm9vOmJhcg=="})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == NO_TOKEN


def test_the_openid_scope_alone_releases_only_sub(http: httpx.Client, make_rp: RpFactory, person: Person,
                                                  browser: Browser) -> None:
    rp = make_rp(first_party=True)
    body = http.get("/userinfo", headers=bearer(access_token(rp, person, browser, scope="openid"))).json()
    assert list(body) == ["sub"]


def test_the_email_scope_releases_only_the_email_claims(http: httpx.Client, make_rp: RpFactory, person: Person,
                                                        browser: Browser) -> None:
    rp = make_rp(first_party=True)
    body = http.get("/userinfo", headers=bearer(access_token(rp, person, browser, scope="openid email"))).json()
    assert set(body) == {"sub", "email", "email_verified"}


def test_a_token_without_the_openid_scope_is_403_insufficient_scope(http: httpx.Client, make_rp: RpFactory,
                                                                    person: Person, browser: Browser) -> None:
    rp = make_rp(first_party=True)
    response = http.get("/userinfo", headers=bearer(access_token(rp, person, browser, scope="profile")))
    assert response.status_code == 403
    assert response.json() == {"error": "insufficient_scope",
                               "error_description": "the access token was not issued for the openid scope"}
    assert response.headers["www-authenticate"] == ('Bearer realm="yihao", error="insufficient_scope", '
                                                    'error_description="the access token was not issued for the '
                                                    'openid scope", scope="openid"')


def test_the_sub_is_the_one_in_the_id_token(http: httpx.Client, make_rp: RpFactory, person: Person,
                                             browser: Browser) -> None:
    rp = make_rp(first_party=True)
    auth = rp.authorization()
    params = callback_params(browser.login(auth.url, person.username, person.password, stop_at=rp.redirect_uri))
    body = rp.exchange(params["code"], auth.verifier).json()
    claims = rp.validate_id_token(body["id_token"], auth.nonce, body["access_token"])
    assert http.get("/userinfo", headers=bearer(body["access_token"])).json()["sub"] == claims["sub"]


@pytest.mark.parametrize("part", ["payload", "signature"])
def test_a_token_with_an_altered_payload_or_signature_is_401_invalid_token(http: httpx.Client, token: str,
                                                                         part: str) -> None:
    head, payload, signature = token.split(".")
    if part == "payload":
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        claims["scope"] += " admin"
        payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    else:
        signature = ("A" if signature[0] != "A" else "B") + signature[1:]
    assert http.get("/userinfo", headers=bearer(token)).status_code == 200
    response = http.get("/userinfo", headers=bearer(f"{head}.{payload}.{signature}"))
    assert response.status_code == 401 and response.headers["www-authenticate"] == INVALID_TOKEN


def test_a_change_to_the_account_shows_at_once_on_every_worker(http: httpx.Client, make_rp: RpFactory, person: Person,
                                                                browser: Browser, provider: Provider,
                                                                another_worker: WorkerFactory) -> None:
    token = access_token(make_rp(first_party=True), person, browser, scope="openid profile")
    other = another_worker()
    for worker in (provider.url, other):  # both workers read the profile (and keep it)
        assert http.get(worker + "/userinfo", headers=bearer(token)).json()["name"] == "李四"
    # Real-name verification renames the account as the registry knows the person, through one worker's core.
    citizen = registered_citizen(provider.core)
    done = provider.core.verification.upgrade(person.id, name=citizen.name, id_number=IdNumber.parse(citizen.id_number),
                                              address=None)
    assert done.status == "verified"
    for worker in (provider.url, other):
        assert http.get(worker + "/userinfo", headers=bearer(token)).json()["name"] == citizen.name
