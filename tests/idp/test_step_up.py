"""Step-up: acr_values, an essential claims.acr and a client's minimum acr ask for a second factor;
the ID token's acr, amr and auth_time say what happened; the session handle changes."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pyotp
import pytest

from tests.idp.conftest import Person, Provider, RpFactory
from tests.idp.mfa_steps import answer, enrol_totp, step_time
from tests.idp.test_authorize_params import redirected_error
from tests.idp.test_claims import UNMET
from tests.idp.test_cli import _env, _scalar
from tests.live import yihao
from tests.rp import Browser, RelyingParty, callback_params


def _tokens(rp: RelyingParty, browser: Browser, page_or_redirect, auth) -> dict:  # type: ignore[no-untyped-def]
    body = rp.fetch_token(callback_params(page_or_redirect)["code"], auth.verifier)
    return rp.validate_id_token(body["id_token"], auth.nonce, body["access_token"])


def _totp_person(provider: Provider, person: Person, browser: Browser, level: int = 3) -> tuple[str, float]:
    provider.core.identities.raise_level(person.id, level, source="test")
    now = step_time()
    secret, _codes = enrol_totp(provider, browser, person, now)
    return secret, now


def test_acr_values_steps_up_a_live_session_with_the_second_factor_only(
        provider: Provider, make_rp: RpFactory, person: Person, browser: Browser) -> None:
    secret, now = _totp_person(provider, person, browser)
    rp = make_rp(first_party=True)
    first = rp.authorization()
    before = _tokens(rp, browser, browser.login(first.url, person.username, person.password,
                                                stop_at=rp.redirect_uri), first)
    assert (before["acr"], before["amr"]) == ("loa/2", ["pwd"])  # L3 identity, password only
    old_handle = browser.http.cookies.get(provider.core.sessions.cookie)

    auth = rp.authorization(acr_values="loa/3")
    page = browser.follow(browser.get(auth.url), rp.redirect_uri)
    assert "/mfa" in page.text and 'name="password"' not in page.text  # no password again
    time.sleep(1)
    after = _tokens(rp, browser, answer(browser, page, rp.redirect_uri, method="otp",
                                        code=pyotp.TOTP(secret).at(now)), auth)
    assert (after["acr"], after["amr"]) == ("loa/3", ["pwd", "otp", "mfa"])
    assert after["auth_time"] > before["auth_time"] and after["sid"] == before["sid"]
    new_handle = browser.http.cookies.get(provider.core.sessions.cookie)
    assert new_handle != old_handle  # no fixation: a new handle at step-up
    assert provider.core.sessions.load(old_handle) is None and provider.core.sessions.load(new_handle) is not None


def test_a_step_up_with_prompt_none_is_interaction_required(provider: Provider, make_rp: RpFactory, person: Person,
                                                            browser: Browser) -> None:
    _totp_person(provider, person, browser)
    rp = make_rp(first_party=True)
    browser.login(rp.authorization().url, person.username, person.password, stop_at=rp.redirect_uri)
    response = browser.follow(browser.get(rp.authorization(acr_values="loa/3", prompt="none", state="st-1").url),
                              rp.redirect_uri)
    params = callback_params(response)
    assert params["error"] == "interaction_required"


@pytest.mark.parametrize(("client", "params"), [
    ({}, {"claims": json.dumps({"id_token": {"acr": {"essential": True, "value": "loa/3"}}})}),
    ({"minimum_acr": "loa/3"}, {}),  # the client asks for nothing: its registration does
])
def test_an_essential_acr_or_a_clients_minimum_asks_for_the_second_factor(
        provider: Provider, make_rp: RpFactory, person: Person, browser: Browser, client: dict[str, str],
        params: dict[str, str]) -> None:
    secret, now = _totp_person(provider, person, browser)
    rp = make_rp(first_party=True, **client)
    auth = rp.authorization(prompt="login", **params)
    page = browser.login(auth.url, person.username, person.password, stop_at=rp.redirect_uri, consent=None)
    assert "/mfa" in page.text
    claims = _tokens(rp, browser, answer(browser, page, rp.redirect_uri, method="otp",
                                         code=pyotp.TOTP(secret).at(now)), auth)
    assert claims["acr"] == "loa/3"


def test_a_clients_minimum_acr_out_of_the_accounts_reach_is_unmet(provider: Provider, make_rp: RpFactory,
                                                                  person: Person, browser: Browser) -> None:
    provider.core.identities.raise_level(person.id, 3, source="test")  # but no second factor
    rp = make_rp(minimum_acr="loa/3")
    auth = rp.authorization(state="st-1")
    response = browser.login(auth.url, person.username, person.password, stop_at=rp.redirect_uri)
    assert redirected_error(provider, response) == UNMET


def test_a_voluntary_acr_beyond_reach_gets_what_the_password_achieves(provider: Provider, make_rp: RpFactory,
                                                                     person: Person, browser: Browser) -> None:
    provider.core.identities.raise_level(person.id, 2, source="test")
    rp = make_rp(first_party=True)
    auth = rp.authorization(acr_values="loa/3")
    claims = _tokens(rp, browser, browser.login(auth.url, person.username, person.password,
                                                stop_at=rp.redirect_uri), auth)
    assert (claims["acr"], claims["amr"]) == ("loa/2", ["pwd"])


def test_max_age_asks_for_the_password_and_the_second_factor_again(provider: Provider, make_rp: RpFactory,
                                                                   person: Person, browser: Browser) -> None:
    secret, now = _totp_person(provider, person, browser)
    rp = make_rp(first_party=True, minimum_acr="loa/3")
    first = rp.authorization(prompt="login")
    page = browser.login(first.url, person.username, person.password, stop_at=rp.redirect_uri, consent=None)
    _tokens(rp, browser, answer(browser, page, rp.redirect_uri, method="otp", code=pyotp.TOTP(secret).at(now)), first)
    time.sleep(1.1)
    auth = rp.authorization(max_age="0")
    page = browser.login(auth.url, person.username, person.password, stop_at=rp.redirect_uri, consent=None)
    assert "/mfa" in page.text  # re-authentication, then the second factor the client requires
    claims = _tokens(rp, browser, answer(browser, page, rp.redirect_uri, method="otp",
                                         code=pyotp.TOTP(secret).at(now + 30)), auth)
    assert claims["acr"] == "loa/3" and time.time() - claims["auth_time"] < 5


def test_clients_create_takes_a_minimum_acr(tmp_path: Path) -> None:
    result = yihao(_env(tmp_path), "clients", "create", "--name", "Tax", "--redirect-uri",
                   "https://tax.example.gov.cn/cb", "--minimum-acr", "loa/3", "--json")
    assert result.returncode == 0, result.stderr
    client_id = json.loads(result.stdout)["client_id"]
    assert _scalar(tmp_path, f"SELECT minimum_acr FROM client WHERE client_id = '{client_id}'") == "loa/3"
    refused = yihao(_env(tmp_path), "clients", "create", "--name", "Tax", "--redirect-uri",
                    "https://tax.example.gov.cn/cb", "--minimum-acr", "loa/9")
    assert refused.returncode != 0


def test_a_step_up_cannot_finish_once_its_session_has_ended(provider: Provider, make_rp: RpFactory, person: Person,
                                                           browser: Browser) -> None:
    secret, now = _totp_person(provider, person, browser)
    rp = make_rp(first_party=True)
    browser.login(rp.authorization(prompt="login").url, person.username, person.password, stop_at=rp.redirect_uri)
    page = browser.follow(browser.get(rp.authorization(acr_values="loa/3").url), rp.redirect_uri)
    assert "/mfa" in page.text
    provider.core.sessions.end(browser.http.cookies.get(provider.core.sessions.cookie))  # signed out meanwhile
    refused = answer(browser, page, rp.redirect_uri, method="otp", code=pyotp.TOTP(secret).at(now))
    assert refused.status_code == 400 and "interaction_expired" in refused.text  # the factor alone signs nobody in
    assert provider.core.factors.totp.verify(person.id, pyotp.TOTP(secret).at(now))  # and was never spent
