"""The claims request parameter, acr, and signed userinfo, as a relying party sees them."""
from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from joserfc import jwt

from tests.idp.conftest import Person, Provider, RpFactory
from tests.idp.test_authorize_params import redirected_error, url
from tests.rp import Browser, RelyingParty, callback_params, parse_form


def tokens(rp: RelyingParty, person: Person, browser: Browser, **params: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Log in with these authorization parameters; the token response and the validated ID token claims."""
    auth = rp.authorization(**params)
    code = callback_params(browser.login(auth.url, person.username, person.password, stop_at=rp.redirect_uri))["code"]
    body = rp.fetch_token(code, auth.verifier)
    return body, rp.validate_id_token(body["id_token"], auth.nonce, body["access_token"])


def claims(**members: dict[str, Any]) -> str:
    return json.dumps(members)


# -- the claims parameter ---------------------------------------------------------------------------

def test_an_id_token_claim_beyond_the_scope_is_consented_and_released_in_the_id_token(
        make_rp: RpFactory, person: Person, browser: Browser) -> None:
    rp = make_rp()
    rp.scope = "openid"
    auth = rp.authorization(claims=claims(id_token={"email": {"essential": True}, "email_verified": None}),
                            ui_locales="en")
    page = browser.login(auth.url, person.username, person.password, stop_at=rp.redirect_uri, consent=None)
    assert parse_form(page.text)["action"].endswith("/consent")
    assert "<li>your e-mail address</li>" in page.text  # the scope that stands for the claim
    code = callback_params(browser.consent(page, "approve", rp.redirect_uri))["code"]
    body = rp.fetch_token(code, auth.verifier)
    id_token = rp.validate_id_token(body["id_token"], auth.nonce, body["access_token"])
    assert (id_token["email"], id_token["email_verified"]) == (f"{person.username}@example.gov.cn", True)
    assert "name" not in id_token
    assert set(rp.userinfo(body["access_token"]).json()) == {"sub"}


def test_userinfo_member_claims_appear_at_userinfo_and_not_in_the_id_token(make_rp: RpFactory, person: Person,
                                                                          browser: Browser) -> None:
    rp = make_rp(first_party=True)
    rp.scope = "openid"
    body, id_token = tokens(rp, person, browser, claims=claims(userinfo={"name": None, "email": None}))
    assert not {"name", "email"} & set(id_token)
    info = rp.userinfo(body["access_token"]).json()
    assert info == {"sub": id_token["sub"], "name": "李四", "email": f"{person.username}@example.gov.cn"}


def test_essential_value_and_values_requests_are_all_accepted(make_rp: RpFactory, person: Person,
                                                              browser: Browser) -> None:
    rp = make_rp(first_party=True)
    rp.scope = "openid"
    requested = {"name": {"essential": False}, "email": {"value": "someone@example.gov.cn"},
                 "preferred_username": {"values": ["a", "b"]}, "phone_number": None, "x_unknown": {"essential": True}}
    _body, id_token = tokens(rp, person, browser, claims=claims(id_token=requested))
    assert (id_token["name"], id_token["email"], id_token["preferred_username"]) == (
        "李四", f"{person.username}@example.gov.cn", person.username)
    assert "phone_number" not in id_token and "x_unknown" not in id_token  # no value; not a claim Yihao knows


def test_claims_outside_the_clients_registered_scopes_are_not_released(make_rp: RpFactory, person: Person,
                                                                       browser: Browser) -> None:
    rp = make_rp(first_party=True, scope="openid profile")
    rp.scope = "openid"
    body, id_token = tokens(rp, person, browser, claims=claims(id_token={"email": None, "name": None},
                                                               userinfo={"email": None}))
    assert id_token["name"] == "李四" and "email" not in id_token
    assert "email" not in rp.userinfo(body["access_token"]).json()


def test_a_sub_value_request_is_answered_only_for_that_end_user(provider: Provider, make_rp: RpFactory,
                                                                person: Person, browser: Browser) -> None:
    rp = make_rp(first_party=True)
    _body, first = tokens(rp, person, browser)
    wanted = claims(id_token={"sub": {"value": first["sub"]}})
    assert "code" in callback_params(browser.get(url(rp, claims=wanted, prompt="none")))
    other = claims(id_token={"sub": {"value": "someone-else"}})
    assert redirected_error(provider, browser.get(url(rp, claims=other, prompt="none")))[0] == "login_required"
    stranger = Browser()
    provider.core.accounts.create("s" + person.username, person.password)
    try:
        response = stranger.login(url(rp, claims=wanted), "s" + person.username, person.password,
                                  stop_at=rp.redirect_uri)
    finally:
        stranger.close()
    assert redirected_error(provider, response) == ("access_denied", "the end-user is not the one the sub claim requests")


@pytest.mark.parametrize(("value", "description"), [
    ("{not json", "claims is not valid JSON"),
    ("[1, 2]", "claims must be a JSON object"),
    ('{"id_token": []}', "claims.id_token must be a JSON object"),
    ('{"userinfo": {"email": true}}', "claims.userinfo.email must be null or a JSON object"),
    ('{"id_token": {"acr": {"essential": "yes"}}}', "claims.id_token.acr.essential must be true or false"),
    ('{"id_token": {"acr": {"values": "loa/1"}}}', "claims.id_token.acr.values must be an array"),
    ('{"id_token": {"acr": {"value": 1}}}', "claims.id_token.acr values must be strings"),
    ("[" * 3000 + "]" * 3000, "claims must be at most 4096 characters"),
])
def test_a_malformed_claims_parameter_is_invalid_request_at_the_redirect_uri(
        provider: Provider, make_rp: RpFactory, browser: Browser, value: str, description: str) -> None:
    response = browser.get(url(make_rp(), claims=value))
    assert redirected_error(provider, response) == ("invalid_request", description)


def test_deeply_nested_claims_json_is_invalid_request_not_a_crash(provider: Provider, make_rp: RpFactory,
                                                                  browser: Browser) -> None:
    response = browser.get(url(make_rp(), claims="[" * 2000 + "]" * 2000))
    assert redirected_error(provider, response) == ("invalid_request", "claims is not valid JSON")


# -- acr --------------------------------------------------------------------------------------------

UNMET = ("unmet_authentication_requirements", "the authentication cannot meet the essential acr requested")


@pytest.mark.parametrize("acr", [{"essential": True, "value": "urn:example:unknown"},
                                 {"essential": True, "values": ["urn:example:a", "urn:example:b"]}])
def test_an_essential_acr_no_login_can_meet_is_unmet_authentication_requirements(
        provider: Provider, make_rp: RpFactory, browser: Browser, acr: dict[str, Any]) -> None:
    response = browser.get(url(make_rp(), claims=claims(id_token={"acr": acr})))
    assert redirected_error(provider, response) == UNMET


@pytest.mark.parametrize("acr", [{"essential": True, "value": "loa/3"},
                                 {"essential": True, "values": ["loa/4", "loa/3"]}])
def test_an_essential_acr_beyond_the_accounts_reach_is_unmet_after_the_password(
        provider: Provider, make_rp: RpFactory, person: Person, browser: Browser, acr: dict[str, Any]) -> None:
    rp = make_rp()
    response = browser.login(url(rp, claims=claims(id_token={"acr": acr})), person.username, person.password,
                             stop_at=rp.redirect_uri)
    assert redirected_error(provider, response) == UNMET


def test_an_unmet_essential_acr_is_refused_with_a_live_session_too(provider: Provider, make_rp: RpFactory,
                                                                   person: Person, browser: Browser) -> None:
    rp = make_rp(first_party=True)
    tokens(rp, person, browser)
    response = browser.get(url(rp, claims=claims(id_token={"acr": {"essential": True, "value": "urn:example:x"}})))
    assert redirected_error(provider, response) == UNMET


def test_an_essential_acr_a_certificate_login_can_meet_asks_for_a_new_login(provider: Provider, make_rp: RpFactory,
                                                                          person: Person, browser: Browser) -> None:
    rp = make_rp(first_party=True)
    tokens(rp, person, browser)  # a password session: loa/1
    response = browser.get(url(rp, claims=claims(id_token={"acr": {"essential": True, "value": "loa/4"}})))
    assert response.status_code in (302, 303) and "/interaction/" in response.headers["location"]


def test_an_essential_acr_the_login_meets_is_reported_as_requested(make_rp: RpFactory, person: Person,
                                                                   browser: Browser) -> None:
    rp = make_rp(first_party=True)
    request = claims(id_token={"acr": {"essential": True, "values": ["loa/3", "loa/1"]}})
    _body, id_token = tokens(rp, person, browser, claims=request)
    assert id_token["acr"] == "loa/1"


@pytest.mark.parametrize("params", [{"acr_values": "loa/3 loa/2"},
                                    {"claims": claims(id_token={"acr": {"values": ["loa/4"]}})},
                                    {"claims": claims(id_token={"acr": None}), "acr_values": "loa/4"}])
def test_a_voluntary_acr_request_gets_the_achieved_acr(make_rp: RpFactory, person: Person, browser: Browser,
                                                        params: dict[str, str]) -> None:
    _body, id_token = tokens(make_rp(first_party=True), person, browser, **params)
    assert id_token["acr"] == "loa/1"


# -- signed userinfo --------------------------------------------------------------------------------

@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
def test_a_client_registered_for_signed_userinfo_gets_a_jws_it_can_validate(make_rp: RpFactory, person: Person,
                                                                           browser: Browser, alg: str) -> None:
    rp = make_rp(first_party=True, userinfo_signed_response_alg=alg)
    body, id_token = tokens(rp, person, browser)
    response = rp.userinfo(body["access_token"])
    assert response.status_code == 200 and response.headers["content-type"] == "application/jwt"
    assert response.headers["cache-control"] == "no-store"
    assert jwt.decode(response.text, rp.jwks(), algorithms=[alg]).header["alg"] == alg
    info = rp.validate_userinfo_jwt(response.text)
    assert (info["sub"], info["name"]) == (id_token["sub"], "李四")


def test_a_client_without_the_registration_gets_plain_json(make_rp: RpFactory, person: Person,
                                                           browser: Browser) -> None:
    rp = make_rp(first_party=True)
    body, _id_token = tokens(rp, person, browser)
    response = rp.userinfo(body["access_token"])
    assert response.headers["content-type"] == "application/json" and "iss" not in response.json()


# -- discovery --------------------------------------------------------------------------------------

def test_discovery_advertises_claims_acr_and_userinfo_signing(make_rp: RpFactory) -> None:
    meta = make_rp().metadata
    assert meta["claims_parameter_supported"] is True
    assert meta["acr_values_supported"] == ["loa/1", "loa/2", "loa/3", "loa/4"]  # loa/4: a USB-key certificate on L4
    assert meta["userinfo_signing_alg_values_supported"] == ["RS256", "ES256", "EdDSA"]
    assert {"email", "email_verified", "name", "preferred_username", "phone_number", "acr"} <= set(
        meta["claims_supported"])


def test_a_refresh_still_releases_the_requested_claims(make_rp: RpFactory, person: Person,
                                                       browser: Browser) -> None:
    rp = make_rp(first_party=True, grant_types=["authorization_code", "refresh_token"], session_refresh_tokens=True)
    rp.scope = "openid"
    body, _id_token = tokens(rp, person, browser, claims=claims(userinfo={"email": None}, id_token={"name": None}))
    refreshed = httpx.post(rp.metadata["token_endpoint"], auth=(rp.client_id, rp.client_secret or ""),
                           data={"grant_type": "refresh_token", "refresh_token": body["refresh_token"]})
    assert refreshed.status_code == 200
    assert rp.userinfo(refreshed.json()["access_token"]).json()["email"] == f"{person.username}@example.gov.cn"
    renewed = jwt.decode(refreshed.json()["id_token"], rp.jwks(), algorithms=["RS256"]).claims
    assert renewed["name"] == "李四" and "email" not in renewed
