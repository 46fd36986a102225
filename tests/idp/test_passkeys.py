"""Passkeys: registration on the account page and the login ceremony, verified by py_webauthn on
what a software authenticator (tests/authenticator.py) produces."""
from __future__ import annotations

import re

from tests.authenticator import SoftAuthenticator, options_of
from tests.idp.conftest import Person, Provider, RpFactory
from tests.idp.mfa_steps import NOWHERE, account_post, answer, enrol_passkey, passkey_answer, security_page
from tests.rp import Browser, callback_params, parse_form


def _loa4_login(provider: Provider, make_rp: RpFactory, person: Person, browser: Browser,
                authenticator: SoftAuthenticator) -> tuple:
    provider.core.identities.raise_level(person.id, 4, source="test")
    assert enrol_passkey(provider, browser, person, authenticator).status_code == 200
    rp = make_rp(first_party=True)
    auth = rp.authorization(acr_values="loa/4", prompt="login")
    page = browser.login(auth.url, person.username, person.password, stop_at=rp.redirect_uri, consent=None)
    return rp, auth, page


def test_a_registered_passkey_is_listed_on_the_account_page(provider: Provider, person: Person,
                                                            browser: Browser) -> None:
    page = enrol_passkey(provider, browser, person, SoftAuthenticator(provider.url), name="我的手机")
    assert page.status_code == 200 and "我的手机" in page.text
    assert len(provider.core.factors.passkeys.list(person.id)) == 1


def test_a_registration_for_another_origin_is_refused(provider: Provider, person: Person, browser: Browser) -> None:
    page = enrol_passkey(provider, browser, person, SoftAuthenticator("https://phish.example"))
    assert page.status_code == 400
    assert provider.core.factors.passkeys.list(person.id) == []


def test_loa4_with_a_user_verifying_passkey_gives_an_honest_id_token(
        provider: Provider, make_rp: RpFactory, person: Person, browser: Browser) -> None:
    authenticator = SoftAuthenticator(provider.url)
    rp, auth, page = _loa4_login(provider, make_rp, person, browser, authenticator)
    done = passkey_answer(browser, page, authenticator, rp.redirect_uri)
    body = rp.fetch_token(callback_params(done)["code"], auth.verifier)
    claims = rp.validate_id_token(body["id_token"], auth.nonce, body["access_token"])
    assert claims["acr"] == "loa/4"
    assert claims["amr"] == ["pwd", "hwk", "user", "mfa"]


def test_a_synced_passkey_is_reported_as_a_software_key(provider: Provider, make_rp: RpFactory, person: Person,
                                                        browser: Browser) -> None:
    authenticator = SoftAuthenticator(provider.url, synced=True)
    rp, auth, page = _loa4_login(provider, make_rp, person, browser, authenticator)
    body = rp.fetch_token(callback_params(passkey_answer(browser, page, authenticator, rp.redirect_uri))["code"],
                          auth.verifier)
    assert rp.validate_id_token(body["id_token"], auth.nonce)["amr"] == ["pwd", "swk", "user", "mfa"]


def test_loa4_refuses_a_passkey_that_did_not_verify_the_person(provider: Provider, make_rp: RpFactory,
                                                               person: Person, browser: Browser) -> None:
    authenticator = SoftAuthenticator(provider.url)
    rp, _auth, page = _loa4_login(provider, make_rp, person, browser, authenticator)
    assert '"userVerification": "required"' in page.text
    authenticator.user_verification = False
    refused = passkey_answer(browser, page, authenticator, rp.redirect_uri)
    assert refused.status_code == 400 and "/mfa" in refused.text


def test_an_assertion_is_accepted_once(provider: Provider, make_rp: RpFactory, person: Person,
                                       browser: Browser) -> None:
    authenticator = SoftAuthenticator(provider.url)
    rp, _auth, page = _loa4_login(provider, make_rp, person, browser, authenticator)
    form = parse_form(page.text)
    credential = authenticator.get(options_of(page.text))
    replay = {"method": "webauthn", "ceremony": form["ceremony"], "credential": credential}
    assert "code" in callback_params(answer(browser, page, rp.redirect_uri, **replay))
    page = browser.login(rp.authorization(acr_values="loa/4", prompt="login").url, person.username,
                         person.password, stop_at=rp.redirect_uri, consent=None)
    replayed = answer(browser, page, rp.redirect_uri, **replay)  # the old ceremony and signature
    assert replayed.status_code == 400


def test_another_accounts_passkey_does_not_sign_in(provider: Provider, make_rp: RpFactory, person: Person,
                                                   browser: Browser) -> None:
    other = provider.core.accounts.create(f"{person.username}x", "another password 1")
    mine = SoftAuthenticator(provider.url)
    rp, _auth, page = _loa4_login(provider, make_rp, person, browser, mine)
    stranger_browser, theirs = Browser(), SoftAuthenticator(provider.url)
    try:
        enrol_passkey(provider, stranger_browser, Person(other.id, other.username, "another password 1"),
                      theirs)
    finally:
        stranger_browser.close()
    refused = passkey_answer(browser, page, theirs, rp.redirect_uri)
    assert refused.status_code == 400


def test_a_passkey_can_be_removed(provider: Provider, person: Person, browser: Browser) -> None:
    authenticator = SoftAuthenticator(provider.url)
    page = enrol_passkey(provider, browser, person, authenticator)
    page = security_page(provider, browser, person)  # a second factor is now needed for changes
    page = passkey_answer(browser, page, authenticator, NOWHERE)
    credential_id = re.search(r'name="credential_id" value="([^"]+)"', page.text)
    assert credential_id
    account_post(provider, browser, page, "passkey_remove", credential_id=credential_id.group(1))
    assert provider.core.factors.passkeys.list(person.id) == []


def test_the_account_page_says_passkeys_need_a_host_name_on_an_ip_address(provider: Provider, person: Person,
                                                                         browser: Browser) -> None:
    page = security_page(provider, browser, person)  # the test provider's issuer is http://127.0.0.1:…
    assert 'id="passkeys-need-a-host-name"' in page.text and 'value="passkey_begin"' not in page.text


def test_the_second_factor_page_runs_only_the_nonced_script(provider: Provider, make_rp: RpFactory, person: Person,
                                                           browser: Browser) -> None:
    _rp, _auth, page = _loa4_login(provider, make_rp, person, browser, SoftAuthenticator(provider.url))
    nonce = re.search(r"script-src 'nonce-([^']+)'", page.headers["content-security-policy"])
    assert nonce
    scripts = re.findall(r"<script([^>]*)>", page.text)
    assert scripts and all('type="application/json"' in s or f'nonce="{nonce.group(1)}"' in s for s in scripts)
    assert all("src=" in s for s in scripts if "nonce=" in s)  # code only from /static, never inline


def test_malformed_passkey_responses_get_the_page_again_not_an_error(provider: Provider, make_rp: RpFactory,
                                                                      person: Person, browser: Browser) -> None:
    rp, _auth, page = _loa4_login(provider, make_rp, person, browser, SoftAuthenticator(provider.url))
    limit = provider.core.settings.throttle_account_failures
    for credential in ["", "{", '{"id": 7}', "x" * 20_000, "[]" * 8][:limit - 1]:  # failures, counted
        page = answer(browser, page, rp.redirect_uri, method="webauthn", ceremony=parse_form(page.text)["ceremony"],
                      credential=credential)
        assert page.status_code == 400 and "/mfa" in page.text
    unknown = answer(browser, page, rp.redirect_uri, method="carrier-pigeon")
    assert unknown.status_code == 429 and unknown.headers["retry-after"]
