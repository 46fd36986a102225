"""The authorization code flow end to end, as a relying party and a person see it."""
from __future__ import annotations

from tests.idp.conftest import Person, Provider, RpFactory
from tests.rp import Browser, callback_params


def test_full_flow_through_login_and_consent_pages_yields_valid_tokens(provider: Provider, make_rp: RpFactory,
                                                                      person: Person, browser: Browser) -> None:
    rp = make_rp()
    auth = rp.authorization()
    response = browser.login(auth.url, person.username, person.password, stop_at=rp.redirect_uri)
    params = callback_params(response)
    assert params["state"] == auth.state
    assert params["iss"] == provider.url
    body = rp.fetch_token(params["code"], auth.verifier)
    claims = rp.validate_id_token(body["id_token"], auth.nonce, body["access_token"])
    assert claims["amr"] == ["pwd"] and claims["acr"] == "loa/1" and claims["sid"]
    info = rp.userinfo(body["access_token"])
    assert info.status_code == 200
    assert info.json()["sub"] == claims["sub"]
    assert info.json()["name"] == "李四"


def test_consent_is_remembered_for_the_same_scopes(make_rp: RpFactory, person: Person, browser: Browser) -> None:
    rp = make_rp()
    browser.login(rp.authorization().url, person.username, person.password, stop_at=rp.redirect_uri)
    again = browser.follow(browser.get(rp.authorization().url), rp.redirect_uri)
    assert "code" in callback_params(again)


def test_denied_consent_returns_access_denied(make_rp: RpFactory, person: Person, browser: Browser) -> None:
    rp = make_rp()
    auth = rp.authorization()
    response = browser.login(auth.url, person.username, person.password, stop_at=rp.redirect_uri, consent="deny")
    params = callback_params(response)
    assert params["error"] == "access_denied" and params["state"] == auth.state


def test_token_responses_are_not_cached(make_rp: RpFactory, person: Person, browser: Browser) -> None:
    rp = make_rp(first_party=True)
    auth = rp.authorization()
    params = callback_params(browser.login(auth.url, person.username, person.password, stop_at=rp.redirect_uri))
    token = rp.exchange(params["code"], auth.verifier)
    assert token.status_code == 200
    assert token.headers["cache-control"] == "no-store" and token.headers["pragma"] == "no-cache"


def test_wrong_pkce_verifier_is_invalid_grant(make_rp: RpFactory, person: Person, browser: Browser) -> None:
    rp = make_rp(first_party=True)
    auth = rp.authorization()
    params = callback_params(browser.login(auth.url, person.username, person.password, stop_at=rp.redirect_uri))
    token = rp.exchange(params["code"], "x" * 50)
    assert token.status_code == 400
    assert token.json() == {"error": "invalid_grant", "error_description": "code_verifier does not match the code_challenge"}


def test_code_is_single_use_and_reuse_revokes_the_first_access_token(make_rp: RpFactory, person: Person,
                                                                      browser: Browser) -> None:
    rp = make_rp(first_party=True)
    auth = rp.authorization()
    params = callback_params(browser.login(auth.url, person.username, person.password, stop_at=rp.redirect_uri))
    first = rp.exchange(params["code"], auth.verifier).json()
    assert rp.userinfo(first["access_token"]).status_code == 200
    second = rp.exchange(params["code"], auth.verifier)
    assert second.status_code == 400 and second.json()["error"] == "invalid_grant"
    revoked = rp.userinfo(first["access_token"])
    assert revoked.status_code == 401
    assert 'error="invalid_token"' in revoked.headers["www-authenticate"]


def test_wrong_client_secret_is_401_invalid_client(make_rp: RpFactory, person: Person, browser: Browser) -> None:
    rp = make_rp(first_party=True)
    auth = rp.authorization()
    params = callback_params(browser.login(auth.url, person.username, person.password, stop_at=rp.redirect_uri))
    rp.client_secret = "not-the-secret"
    token = rp.exchange(params["code"], auth.verifier)
    assert token.status_code == 401
    assert token.json()["error"] == "invalid_client"
    assert token.headers["www-authenticate"].startswith("Basic")


def test_public_client_with_pkce_gets_tokens_without_a_secret(make_rp: RpFactory, person: Person,
                                                              browser: Browser) -> None:
    rp = make_rp(public=True, first_party=True)
    auth = rp.authorization()
    params = callback_params(browser.login(auth.url, person.username, person.password, stop_at=rp.redirect_uri))
    body = rp.exchange(params["code"], auth.verifier).json()
    rp.validate_id_token(body["id_token"], auth.nonce, body["access_token"])


def test_public_client_without_pkce_is_refused_at_the_redirect_uri(make_rp: RpFactory, browser: Browser) -> None:
    rp = make_rp(public=True)
    auth = rp.authorization(pkce=False)
    params = callback_params(browser.get(auth.url))
    assert params["error"] == "invalid_request"
    assert params["error_description"] == "code_challenge (PKCE, S256) is required for public clients"


def test_redirect_uri_mismatch_shows_a_page_and_never_redirects(make_rp: RpFactory, browser: Browser) -> None:
    rp = make_rp()
    rp.redirect_uri = rp.redirect_uri + "/evil"
    response = browser.get(rp.authorization().url)
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "invalid_request" in response.text


def test_prompt_none_without_a_session_is_login_required(make_rp: RpFactory, browser: Browser) -> None:
    rp = make_rp()
    auth = rp.authorization(prompt="none")
    params = callback_params(browser.get(auth.url))
    assert params["error"] == "login_required" and params["state"] == auth.state


def test_second_client_in_the_same_browser_gets_a_code_without_a_prompt(make_rp: RpFactory, person: Person,
                                                                        browser: Browser) -> None:
    first, second = make_rp(first_party=True), make_rp(first_party=True)
    browser.login(first.authorization().url, person.username, person.password, stop_at=first.redirect_uri)
    auth = second.authorization(prompt="none")
    params = callback_params(browser.get(auth.url))
    body = second.exchange(params["code"], auth.verifier).json()
    claims = second.validate_id_token(body["id_token"], auth.nonce, body["access_token"])
    assert claims["amr"] == ["pwd"]


def test_wrong_password_shows_the_same_message_as_an_unknown_user(make_rp: RpFactory, person: Person,
                                                                 browser: Browser) -> None:
    rp = make_rp()
    wrong = browser.login(rp.authorization().url, person.username, "wrong password!", stop_at=rp.redirect_uri,
                          consent=None)
    unknown = browser.login(rp.authorization().url, "nobody-here", "wrong password!", stop_at=rp.redirect_uri,
                            consent=None)
    assert wrong.status_code == unknown.status_code == 200
    assert "用户名或密码不正确" in wrong.text and "用户名或密码不正确" in unknown.text


def test_two_first_consents_at_the_same_moment_both_succeed(make_rp: RpFactory, person: Person) -> None:
    from concurrent.futures import ThreadPoolExecutor

    rp = make_rp()
    browsers = [Browser(), Browser()]
    try:
        pages = []
        for browser in browsers:  # two tabs reach the consent page for the same person and client
            auth = rp.authorization()
            page = browser.login(auth.url, person.username, person.password, stop_at=rp.redirect_uri, consent=None)
            pages.append((browser, page))
        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(lambda bp: bp[0].consent(bp[1], "approve", rp.redirect_uri), pages))
        assert all("code" in callback_params(r) for r in results)
    finally:
        for browser in browsers:
            browser.close()
