"""The authorization endpoint's parameters at their edges, as a relying party and a person see them."""
from __future__ import annotations

import re
import time
import uuid
from html import unescape
from typing import Callable
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest

from tests.idp.conftest import Person, Provider, RpFactory
from tests.rp import AuthRequest, Browser, RelyingParty, callback_params, parse_form

# RFC 7636 Appendix B's example pair
VERIFIER, CHALLENGE = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


@pytest.fixture
def other_person(provider: Provider) -> Person:
    username, password = f"o{uuid.uuid4().hex[:10]}", "another horse battery"
    profile = provider.core.accounts.create(username, password, name="王五")
    return Person(profile.id, username, password)


def url(rp: RelyingParty, **params: str | None) -> str:
    """A hand-built authorization request: sane defaults, overridden or (with None) dropped."""
    defaults = {"response_type": "code", "client_id": rp.client_id, "redirect_uri": rp.redirect_uri,
                "scope": "openid", "state": "st-1", "nonce": "n-1", "code_challenge": CHALLENGE,
                "code_challenge_method": "S256"}
    merged = {k: v for k, v in (defaults | params).items() if v is not None}
    return rp.metadata["authorization_endpoint"] + "?" + urlencode(merged)


def refusal(response: httpx.Response) -> tuple[str, str]:
    """The error code and description of a page shown instead of a redirect."""
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "Traceback" not in response.text
    found = re.search(r"<code>([^<]*)</code>(?: — ([^<]*))?</p>", response.text)
    assert found, "expected the error page"
    return unescape(found.group(1)), unescape(found.group(2) or "")


def redirected_error(provider: Provider, response: httpx.Response, state: str = "st-1") -> tuple[str, str]:
    """The error and description sent to the redirect URI, after checking `state` and `iss` came along."""
    assert response.status_code == 303, f"expected a redirect to the client, got {response.status_code}"
    params = callback_params(response)
    assert params.pop("state") == state
    assert params.pop("iss") == provider.url  # RFC 9207
    assert set(params) == {"error", "error_description"}
    return params["error"], params["error_description"]


def signed_in(rp: RelyingParty, person: Person, browser: Browser, **params: str) -> tuple[AuthRequest, dict[str, str]]:
    auth = rp.authorization(**params)
    return auth, callback_params(browser.login(auth.url, person.username, person.password, stop_at=rp.redirect_uri))


def shown_form(browser: Browser, rp: RelyingParty, request_url: str) -> str:
    """The action of the form on the page the browser lands on."""
    page = browser.follow(browser.get(request_url), rp.redirect_uri)
    assert page.status_code == 200, f"expected a page, got {page.status_code}"
    return parse_form(page.text).get("action", "")


def csp(response: httpx.Response) -> dict[str, str]:
    directives = (part.strip().split(" ", 1) for part in response.headers["content-security-policy"].split(";"))
    return {d[0]: d[1] if len(d) > 1 else "" for d in directives}


# -- GET and POST, response modes ---------------------------------------------------------------

def test_post_to_authorize_works_like_get(make_rp: RpFactory, person: Person, browser: Browser) -> None:
    rp = make_rp(first_party=True)
    signed_in(rp, person, browser)
    auth = rp.authorization()
    response = browser.http.post(rp.metadata["authorization_endpoint"], data=dict(parse_qsl(urlsplit(auth.url).query)))
    params = callback_params(response)
    assert params["state"] == auth.state
    body = rp.exchange(params["code"], auth.verifier).json()
    rp.validate_id_token(body["id_token"], auth.nonce, body["access_token"])


def test_form_post_posts_code_state_and_iss_to_the_redirect_uri(provider: Provider, make_rp: RpFactory,
                                                                 person: Person, browser: Browser) -> None:
    rp = make_rp(first_party=True)
    auth = rp.authorization(response_mode="form_post", state='"><script>alert(1)</script>')
    page = browser.login(auth.url, person.username, person.password, stop_at=rp.redirect_uri, consent=None)
    form = parse_form(page.text)
    assert page.status_code == 200 and form["action"] == rp.redirect_uri
    assert form["state"] == auth.state and form["iss"] == provider.url
    assert rp.exchange(form["code"], auth.verifier).status_code == 200


def test_form_post_page_csp_allows_the_redirect_origin_and_only_its_nonced_script(
        make_rp: RpFactory, person: Person, browser: Browser) -> None:
    rp = make_rp(first_party=True)
    auth = rp.authorization(response_mode="form_post")
    page = browser.login(auth.url, person.username, person.password, stop_at=rp.redirect_uri, consent=None)
    nonce = re.search(r'<script nonce="([^"]+)">', page.text)
    assert nonce is not None
    policy = csp(page)
    assert policy["form-action"] == "'self' " + rp.redirect_uri.rsplit("/", 1)[0]
    assert policy["script-src"] == f"'nonce-{nonce.group(1)}'"


def test_unsupported_response_mode_is_an_error_at_the_redirect_uri(provider: Provider, make_rp: RpFactory,
                                                                   browser: Browser) -> None:
    rp = make_rp()
    response = browser.get(url(rp, response_mode="fragment"))
    assert redirected_error(provider, response) == ("invalid_request", "response_mode must be query or form_post")


def test_response_type_token_is_unsupported_response_type_at_the_redirect_uri(provider: Provider,
                                                                              make_rp: RpFactory,
                                                                              browser: Browser) -> None:
    rp = make_rp()
    response = browser.get(url(rp, response_type="token"))
    assert redirected_error(provider, response) == ("unsupported_response_type", "response_type must be code")


def test_missing_response_type_is_invalid_request_at_the_redirect_uri(provider: Provider, make_rp: RpFactory,
                                                                      browser: Browser) -> None:
    rp = make_rp()
    response = browser.get(url(rp, response_type=None))
    assert redirected_error(provider, response) == ("invalid_request", "response_type is required")


def test_state_is_returned_exactly_as_sent(make_rp: RpFactory, person: Person, browser: Browser) -> None:
    rp = make_rp(first_party=True)
    state = "a b&c=d/é?#+%"
    auth = rp.authorization(state=state)
    params = callback_params(browser.login(auth.url, person.username, person.password, stop_at=rp.redirect_uri))
    assert params["state"] == state


def test_an_oversized_state_is_invalid_request(provider: Provider, make_rp: RpFactory, browser: Browser) -> None:
    rp = make_rp()
    state = "s" * 2049
    response = browser.get(url(rp, state=state))
    assert redirected_error(provider, response, state) == ("invalid_request", "nonce or state is too long")


def test_an_unknown_parameter_is_ignored(make_rp: RpFactory, person: Person, browser: Browser) -> None:
    rp = make_rp(first_party=True)
    auth, params = signed_in(rp, person, browser, x_unknown_extension="whatever", claims_locales="fr")
    assert params["state"] == auth.state
    assert rp.exchange(params["code"], auth.verifier).status_code == 200


# -- client_id and redirect_uri: a page, never a redirect -------------------------------------------

def test_unknown_client_id_shows_a_page_and_never_redirects(make_rp: RpFactory, browser: Browser) -> None:
    rp = make_rp()
    response = browser.get(url(rp, client_id="no-such-client"))
    assert refusal(response) == ("invalid_client", "client_id is not registered")


def test_missing_client_id_shows_a_page(make_rp: RpFactory, browser: Browser) -> None:
    rp = make_rp()
    assert refusal(browser.get(url(rp, client_id=None))) == ("invalid_request", "client_id is required")


def test_missing_redirect_uri_shows_a_page_even_with_one_registered(make_rp: RpFactory, browser: Browser) -> None:
    rp = make_rp()
    assert refusal(browser.get(url(rp, redirect_uri=None))) == ("invalid_request", "redirect_uri is required")


@pytest.mark.parametrize("variant", [
    lambda uri: uri + "/",
    lambda uri: uri.replace("/callback", "/Callback"),
    lambda uri: uri.replace("https://rp-", "https://RP-"),
    lambda uri: uri + "?extra=1",
    lambda uri: uri.replace("https://", "http://"),
], ids=["trailing-slash", "path-case", "host-case", "extra-query", "scheme"])
def test_a_redirect_uri_that_is_not_exactly_registered_shows_a_page(make_rp: RpFactory, browser: Browser,
                                                                    variant: Callable[[str], str]) -> None:
    rp = make_rp()
    response = browser.get(url(rp, redirect_uri=variant(rp.redirect_uri)))
    assert refusal(response) == ("invalid_request", "redirect_uri does not exactly match a registered redirect URI")


@pytest.mark.parametrize("name", ["state", "client_id", "redirect_uri", "response_type", "scope"])
def test_a_repeated_parameter_shows_a_page_and_never_redirects(make_rp: RpFactory, browser: Browser,
                                                               name: str) -> None:
    rp = make_rp()
    response = browser.get(url(rp) + "&" + urlencode({name: {"client_id": rp.client_id,
                                                             "redirect_uri": rp.redirect_uri}.get(name, "code")}))
    assert refusal(response) == ("invalid_request", f"parameter {name} is repeated")


def test_the_refusal_page_is_readable_in_chinese_by_default(make_rp: RpFactory, browser: Browser) -> None:
    response = browser.get(url(make_rp(), client_id="no-such-client"))
    assert '<html lang="zh-CN">' in response.text
    assert "该应用未在一号注册。" in response.text


def test_the_refusal_page_is_readable_in_english_for_ui_locales_en(make_rp: RpFactory, browser: Browser) -> None:
    response = browser.get(url(make_rp(), client_id="no-such-client", ui_locales="en"))
    assert '<html lang="en">' in response.text
    assert "This application is not registered with Yihao." in response.text


# -- PKCE ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("challenge", ["a" * 43 + "\n", "a" * 42, "a" * 129, "a" * 42 + "="])
def test_a_code_challenge_outside_rfc_7636s_alphabet_and_length_is_invalid_request(
        provider: Provider, make_rp: RpFactory, browser: Browser, challenge: str) -> None:
    rp = make_rp()
    response = browser.get(url(rp, code_challenge=challenge))
    assert redirected_error(provider, response) == (
        "invalid_request", "code_challenge must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~")


def test_code_challenge_method_plain_is_invalid_request(provider: Provider, make_rp: RpFactory,
                                                        browser: Browser) -> None:
    rp = make_rp()
    response = browser.get(url(rp, code_challenge=VERIFIER, code_challenge_method="plain"))
    assert redirected_error(provider, response) == ("invalid_request", "code_challenge_method must be S256")


def test_code_challenge_without_a_method_is_refused_as_plain(provider: Provider, make_rp: RpFactory,
                                                             browser: Browser) -> None:
    rp = make_rp()
    response = browser.get(url(rp, code_challenge=VERIFIER, code_challenge_method=None))
    assert redirected_error(provider, response) == ("invalid_request", "code_challenge_method must be S256")


def test_a_confidential_client_that_sent_a_challenge_must_send_the_verifier(make_rp: RpFactory, person: Person,
                                                                            browser: Browser) -> None:
    rp = make_rp(first_party=True)
    _auth, params = signed_in(rp, person, browser)
    token = rp.exchange(params["code"], None)
    assert token.status_code == 400
    assert token.json() == {"error": "invalid_request", "error_description": "Missing 'code_verifier'"}


def test_a_verifier_without_a_challenge_is_refused(make_rp: RpFactory, person: Person, browser: Browser) -> None:
    rp = make_rp(first_party=True)
    auth = rp.authorization(pkce=False)
    params = callback_params(browser.login(auth.url, person.username, person.password, stop_at=rp.redirect_uri))
    token = rp.exchange(params["code"], VERIFIER)
    assert token.status_code == 400
    assert token.json() == {"error": "invalid_request", "error_description":
                            "The authorization request had no 'code_challenge', but a 'code_verifier' was provided."}


# -- prompt, max_age, id_token_hint -----------------------------------------------------------------

def test_prompt_login_with_a_live_session_shows_the_login_page_again(make_rp: RpFactory, person: Person,
                                                                     browser: Browser) -> None:
    rp = make_rp(first_party=True)
    signed_in(rp, person, browser)
    assert shown_form(browser, rp, rp.authorization(prompt="login").url).endswith("/login")


def test_prompt_consent_asks_again_although_consent_was_given(make_rp: RpFactory, person: Person,
                                                              browser: Browser) -> None:
    rp = make_rp()
    signed_in(rp, person, browser)
    assert shown_form(browser, rp, rp.authorization(prompt="consent").url).endswith("/consent")


def test_prompt_none_without_consent_to_a_third_party_is_consent_required(provider: Provider, make_rp: RpFactory,
                                                                          person: Person, browser: Browser) -> None:
    first_party, third_party = make_rp(first_party=True), make_rp()
    signed_in(first_party, person, browser)
    response = browser.get(url(third_party, prompt="none"))
    assert redirected_error(provider, response) == ("consent_required", "the end-user has not consented to this client")


def test_prompt_none_combined_with_login_is_invalid_request(provider: Provider, make_rp: RpFactory,
                                                            browser: Browser) -> None:
    response = browser.get(url(make_rp(), prompt="none login"))
    assert redirected_error(provider, response) == ("invalid_request",
                                                    "prompt=none cannot be combined with other values")


def test_an_unknown_prompt_value_is_invalid_request(provider: Provider, make_rp: RpFactory, browser: Browser) -> None:
    response = browser.get(url(make_rp(), prompt="bogus"))
    assert redirected_error(provider, response) == ("invalid_request", "prompt value bogus is not supported")


def test_max_age_0_forces_a_new_login_and_a_fresh_auth_time(make_rp: RpFactory, person: Person,
                                                            browser: Browser) -> None:
    rp = make_rp(first_party=True)
    first_auth, first = signed_in(rp, person, browser)
    old = rp.validate_id_token(rp.exchange(first["code"], first_auth.verifier).json()["id_token"], first_auth.nonce)
    started = int(time.time())
    auth, params = signed_in(rp, person, browser, max_age="0")  # fails unless the login page is shown again
    claims = rp.validate_id_token(rp.exchange(params["code"], auth.verifier).json()["id_token"], auth.nonce)
    assert claims["auth_time"] >= started
    assert claims["sid"] == old["sid"]  # a re-authentication continues the session relying parties know


def test_max_age_exceeded_with_prompt_none_is_login_required(provider: Provider, make_rp: RpFactory,
                                                              person: Person, browser: Browser) -> None:
    rp = make_rp(first_party=True)
    signed_in(rp, person, browser)
    response = browser.get(url(rp, prompt="none", max_age="0"))
    assert redirected_error(provider, response) == ("login_required", "the end-user must authenticate again")


def test_a_recent_enough_login_satisfies_max_age(make_rp: RpFactory, person: Person, browser: Browser) -> None:
    rp = make_rp(first_party=True)
    signed_in(rp, person, browser)
    assert "code" in callback_params(browser.get(url(rp, max_age="3600")))


@pytest.mark.parametrize("max_age", ["abc", "-1", "1.5", "²", "1" * 10])
def test_a_max_age_that_is_not_a_non_negative_integer_is_invalid_request(provider: Provider, make_rp: RpFactory,
                                                                         browser: Browser, max_age: str) -> None:
    response = browser.get(url(make_rp(), max_age=max_age))
    assert redirected_error(provider, response) == ("invalid_request", "max_age must be a non-negative integer")


def test_id_token_hint_of_another_subject_with_prompt_none_is_login_required(
        provider: Provider, make_rp: RpFactory, person: Person, other_person: Person, browser: Browser) -> None:
    rp = make_rp(first_party=True)
    auth, params = signed_in(rp, person, browser)
    hint = rp.exchange(params["code"], auth.verifier).json()["id_token"]
    signed_in(rp, other_person, browser, prompt="login")
    response = browser.get(url(rp, prompt="none", id_token_hint=hint))
    assert redirected_error(provider, response) == ("login_required", "the end-user must authenticate again")


def test_signing_in_as_someone_other_than_the_id_token_hint_names_is_login_required(
        provider: Provider, make_rp: RpFactory, person: Person, other_person: Person, browser: Browser) -> None:
    rp = make_rp(first_party=True)
    auth, params = signed_in(rp, person, browser)
    hint = rp.exchange(params["code"], auth.verifier).json()["id_token"]
    fresh = Browser()  # another browser: no session, so the login page; there someone else signs in
    try:
        response = fresh.login(url(rp, id_token_hint=hint), other_person.username, other_person.password,
                               stop_at=rp.redirect_uri)
    finally:
        fresh.close()
    assert redirected_error(provider, response) == ("login_required",
                                                    "the end-user signed in is not the one id_token_hint names")
    again = Browser()  # the person the hint names signs in: a code
    try:
        assert "code" in callback_params(again.login(url(rp, id_token_hint=hint), person.username, person.password,
                                                     stop_at=rp.redirect_uri))
    finally:
        again.close()


def test_id_token_hint_of_the_logged_in_subject_with_prompt_none_gets_a_code(make_rp: RpFactory, person: Person,
                                                                             browser: Browser) -> None:
    rp = make_rp(first_party=True)
    auth, params = signed_in(rp, person, browser)
    hint = rp.exchange(params["code"], auth.verifier).json()["id_token"]
    assert "code" in callback_params(browser.get(url(rp, prompt="none", id_token_hint=hint)))


@pytest.mark.parametrize("hint", ["garbage", "a.b.c", "eyJhbGciOiJub25lIn0.e30.", "é.é.é"])
def test_a_garbage_id_token_hint_is_invalid_request(provider: Provider, make_rp: RpFactory, browser: Browser,
                                                    hint: str) -> None:
    response = browser.get(url(make_rp(), id_token_hint=hint))
    assert redirected_error(provider, response) == ("invalid_request",
                                                    "id_token_hint is not an ID token this provider issued")


def test_an_id_token_hint_issued_to_another_client_is_invalid_request(provider: Provider, make_rp: RpFactory,
                                                                      person: Person, browser: Browser) -> None:
    issuer_rp, rp = make_rp(first_party=True), make_rp(first_party=True)
    auth, params = signed_in(issuer_rp, person, browser)
    hint = issuer_rp.exchange(params["code"], auth.verifier).json()["id_token"]
    response = browser.get(url(rp, id_token_hint=hint))
    assert redirected_error(provider, response) == ("invalid_request", "id_token_hint was not issued to this client")


# -- login_hint, ui_locales -------------------------------------------------------------------------

def test_login_hint_prefills_the_username(make_rp: RpFactory, browser: Browser) -> None:
    rp = make_rp()
    page = browser.follow(browser.get(url(rp, login_hint='zhang.san@example.gov.cn"><b>')), rp.redirect_uri)
    username = re.search(r'<input type="text" id="username" name="username" value="([^"]*)"', page.text)
    assert username is not None and unescape(username.group(1)) == 'zhang.san@example.gov.cn"><b>'


def test_the_login_page_is_chinese_by_default(make_rp: RpFactory, browser: Browser) -> None:
    rp = make_rp()
    page = browser.follow(browser.get(url(rp)), rp.redirect_uri)
    assert '<html lang="zh-CN">' in page.text and "<h1>登录</h1>" in page.text


def test_ui_locales_en_gives_an_english_login_page(make_rp: RpFactory, browser: Browser) -> None:
    rp = make_rp()
    page = browser.follow(browser.get(url(rp, ui_locales="fr-CA en zh-CN")), rp.redirect_uri)
    assert '<html lang="en">' in page.text and "<h1>Sign in</h1>" in page.text
    assert page.headers["content-language"] == "en"


def test_accept_language_en_gives_an_english_login_page(make_rp: RpFactory, browser: Browser) -> None:
    rp = make_rp()
    browser.http.headers["Accept-Language"] = "en-GB,en;q=0.9"
    page = browser.follow(browser.get(url(rp)), rp.redirect_uri)
    assert '<html lang="en">' in page.text and "<h1>Sign in</h1>" in page.text


# -- what is not supported ----------------------------------------------------------------------

@pytest.mark.parametrize("name,error", [("registration", "registration_not_supported")])
def test_registration_by_value_is_refused_by_name(provider: Provider, make_rp: RpFactory,
                                                  browser: Browser, name: str, error: str) -> None:
    response = browser.get(url(make_rp(), **{name: "eyJhbGciOiJub25lIn0.e30."}))
    assert redirected_error(provider, response) == (error, f"the {name} parameter is not supported")


def test_an_unknown_scope_value_is_invalid_scope(provider: Provider, make_rp: RpFactory, browser: Browser) -> None:
    response = browser.get(url(make_rp(), scope="openid bank_account"))
    assert redirected_error(provider, response) == ("invalid_scope",
                                                    "The requested scope is invalid, unknown, or malformed.")
