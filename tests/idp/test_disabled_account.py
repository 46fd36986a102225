"""An account an operator disables gets no more codes, ID tokens or refreshed tokens, whatever it still holds."""
from __future__ import annotations

import pytest
from authlib.integrations.base_client.errors import OAuthError
from sqlalchemy import text

from tests.idp.conftest import Person, Provider, RpFactory
from tests.rp import Browser, callback_params, refresh, tokens_after_login


def set_status(provider: Provider, person: Person, status: str) -> None:
    """What an operator's change of the account does: the row, then the change announced to every worker."""
    with provider.core.engine.begin() as connection:
        connection.execute(text("UPDATE account SET status = :s WHERE id = :id"), {"s": status, "id": person.id})
    provider.core.accounts.changed(person.id)


def test_a_disabled_accounts_sso_session_signs_in_to_nothing(provider: Provider, make_rp: RpFactory, person: Person,
                                                               browser: Browser) -> None:
    rp = make_rp(first_party=True)
    browser.login(rp.authorization().url, person.username, person.password, stop_at=rp.redirect_uri)
    assert "code" in callback_params(browser.follow(browser.get(rp.authorization(prompt="none").url),
                                                    rp.redirect_uri))  # the session signs in silently
    set_status(provider, person, "disabled")
    silent = callback_params(browser.follow(browser.get(rp.authorization(prompt="none").url), rp.redirect_uri))
    assert silent["error"] == "login_required" and "code" not in silent
    shown = browser.get(rp.authorization().url)  # without prompt=none: the login page, not a code
    assert shown.status_code == 303 and shown.headers["location"].startswith("/interaction/")
    set_status(provider, person, "active")
    assert "code" in callback_params(browser.follow(browser.get(rp.authorization(prompt="none").url),
                                                    rp.redirect_uri))


def test_a_disabled_account_gets_no_refreshed_tokens_and_its_token_stays_unspent(provider: Provider,
                                                                                 make_rp: RpFactory,
                                                                                 person: Person) -> None:
    rp = make_rp(first_party=True, grant_types=["authorization_code", "refresh_token"],
                 scope="openid profile offline_access")
    rp.scope = "openid profile offline_access"
    first, _nonce = tokens_after_login(rp, person.username, person.password)
    set_status(provider, person, "disabled")
    with pytest.raises(OAuthError) as raised:
        refresh(rp, first["refresh_token"])
    assert (raised.value.error, raised.value.description) == ("invalid_grant", "the end-user's account is not active")
    set_status(provider, person, "active")  # re-enabled: the refusal spent nothing and revoked nothing
    assert refresh(rp, first["refresh_token"])["refresh_token"]


def test_an_account_disabled_while_its_consent_page_is_open_gets_no_code(provider: Provider, make_rp: RpFactory,
                                                                         person: Person, browser: Browser) -> None:
    rp = make_rp()  # not first-party: the person is asked to consent
    consent_page = browser.login(rp.authorization().url, person.username, person.password, stop_at=rp.redirect_uri,
                                 consent=None)
    set_status(provider, person, "disabled")  # an operator disables it before the person presses approve
    answer = callback_params(browser.consent(consent_page, "approve", rp.redirect_uri))
    assert answer["error"] == "access_denied" and "code" not in answer
    assert answer["error_description"] == "the end-user's account is not active"
    assert not provider.core.consents.covers(person.id, rp.client_id, "openid")  # and nothing was remembered
    set_status(provider, person, "active")


def test_a_code_issued_before_the_account_was_disabled_gives_no_tokens(provider: Provider, make_rp: RpFactory,
                                                                      person: Person, browser: Browser) -> None:
    rp = make_rp(first_party=True)
    auth = rp.authorization()
    params = callback_params(browser.login(auth.url, person.username, person.password, stop_at=rp.redirect_uri))
    set_status(provider, person, "disabled")  # between the redirect and the client's exchange of the code
    try:
        response = rp.exchange(params["code"], auth.verifier)
    finally:
        set_status(provider, person, "active")
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_grant", "error_description": "the end-user's account is not active"}


def test_prompt_select_account_shows_the_login_page_even_with_a_session(make_rp: RpFactory, person: Person,
                                                                        browser: Browser) -> None:
    rp = make_rp(first_party=True)
    browser.login(rp.authorization().url, person.username, person.password, stop_at=rp.redirect_uri)
    shown = browser.get(rp.authorization(prompt="select_account").url)
    assert shown.status_code == 303 and shown.headers["location"].startswith("/interaction/")
    page = browser.follow(shown, rp.redirect_uri)
    assert page.status_code == 200 and 'name="username"' in page.text and 'name="password"' in page.text
