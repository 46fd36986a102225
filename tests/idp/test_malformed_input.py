"""Malformed requests get a 4xx that says what is wrong — never a 500, never a stack trace."""
from __future__ import annotations

import base64
import re
from html import unescape
from typing import Iterator
from urllib.parse import urlencode

import httpx
import pytest

from tests.idp.conftest import Person, Provider, RpFactory
from tests.rp import Browser, RelyingParty, callback_params, parse_form

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def http(provider: Provider) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=provider.url, follow_redirects=False, timeout=30) as client:
        yield client


def oauth_error(response: httpx.Response, status: int) -> dict[str, str]:
    """The JSON error body, after checking the status and that nothing leaked."""
    assert response.status_code == status
    assert "Traceback" not in response.text
    assert response.headers["content-type"] == "application/json"
    return response.json()


def error_page(response: httpx.Response, status: int = 400) -> tuple[str, str]:
    """The error code and description a page for people shows."""
    assert response.status_code == status
    assert "location" not in response.headers and "Traceback" not in response.text
    found = re.search(r"<code>([^<]*)</code>(?: — ([^<]*))?</p>", response.text)
    assert found, "expected the error page"
    return unescape(found.group(1)), unescape(found.group(2) or "")


def basic(raw: bytes) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def a_code(rp: RelyingParty, person: Person, browser: Browser) -> tuple[str, str | None]:
    auth = rp.authorization()
    params = callback_params(browser.login(auth.url, person.username, person.password, stop_at=rp.redirect_uri))
    return params["code"], auth.verifier


# -- the token endpoint -------------------------------------------------------------------------

def test_get_on_the_token_endpoint_is_405_json_naming_the_allowed_method(http: httpx.Client) -> None:
    response = http.get("/token")
    assert oauth_error(response, 405) == {"error": "invalid_request", "error_description": "GET is not allowed here; use POST"}
    assert response.headers["allow"] == "POST"


def test_missing_grant_type_is_invalid_request(http: httpx.Client, make_rp: RpFactory) -> None:
    rp = make_rp()
    response = http.post("/token", data={"code": "x"}, auth=(rp.client_id, rp.client_secret))
    assert oauth_error(response, 400) == {"error": "invalid_request", "error_description": "grant_type is required"}


def test_an_unsupported_grant_type_is_unsupported_grant_type(http: httpx.Client, make_rp: RpFactory) -> None:
    rp = make_rp()
    response = http.post("/token", data={"grant_type": "password", "username": "a", "password": "b"},
                         auth=(rp.client_id, rp.client_secret))
    assert oauth_error(response, 400) == {"error": "unsupported_grant_type",
                                          "error_description": "grant_type=password is not supported"}


def test_missing_code_is_invalid_request(http: httpx.Client, make_rp: RpFactory) -> None:
    rp = make_rp()
    response = http.post("/token", data={"grant_type": "authorization_code", "redirect_uri": rp.redirect_uri},
                         auth=(rp.client_id, rp.client_secret))
    assert oauth_error(response, 400) == {"error": "invalid_request", "error_description": "Missing 'code' in request."}


def test_a_repeated_parameter_in_the_token_body_is_invalid_request(http: httpx.Client, make_rp: RpFactory) -> None:
    rp = make_rp()
    body = "grant_type=authorization_code&code=a&code=b"
    response = http.post("/token", content=body, headers=FORM, auth=(rp.client_id, rp.client_secret))
    assert oauth_error(response, 400) == {"error": "invalid_request", "error_description": "parameter code is repeated"}


def test_token_parameters_in_the_query_string_are_invalid_request(http: httpx.Client, make_rp: RpFactory) -> None:
    rp = make_rp()
    response = http.post("/token?code=x", data={"grant_type": "authorization_code"}, auth=(rp.client_id, rp.client_secret))
    assert oauth_error(response, 400) == {
        "error": "invalid_request", "error_description": "parameters belong in the body, not the query string"}


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", None])
def test_a_body_that_is_not_form_encoded_is_invalid_request(http: httpx.Client, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = http.post("/token", content=b'{"grant_type": "authorization_code"}', headers=headers)
    assert oauth_error(response, 400) == {"error": "invalid_request",
                                          "error_description": "the body must be application/x-www-form-urlencoded"}


def test_a_body_with_invalid_utf8_bytes_is_400(http: httpx.Client) -> None:
    response = http.post("/token", content=b"grant_type=authorization_code&code=\xff\xfe", headers=FORM)
    assert oauth_error(response, 400) == {"error": "invalid_request",
                                          "error_description": "the request body is not valid UTF-8"}


def test_a_body_with_percent_encoded_invalid_utf8_is_400(http: httpx.Client) -> None:
    response = http.post("/token", content=b"grant_type=authorization_code&code=%ff%fe", headers=FORM)
    assert oauth_error(response, 400) == {"error": "invalid_request",
                                          "error_description": "the request body is not valid UTF-8 form encoding"}


def test_a_body_with_a_nul_character_is_400(http: httpx.Client) -> None:
    response = http.post("/token", content=b"grant_type=authorization_code&code=a%00b", headers=FORM)
    assert oauth_error(response, 400) == {"error": "invalid_request",
                                          "error_description": "the request body contains a NUL character"}


def test_a_body_with_too_many_parameters_is_400(http: httpx.Client) -> None:
    body = "grant_type=authorization_code&" + "&".join(f"p{i}=x" for i in range(200))
    response = http.post("/token", content=body, headers=FORM)
    assert oauth_error(response, 400) == {"error": "invalid_request",
                                          "error_description": "the request body has more than 200 parameters"}


def test_a_body_over_64_kib_is_413(http: httpx.Client) -> None:
    response = http.post("/token", content=b"grant_type=authorization_code&code=" + b"a" * 65536, headers=FORM)
    assert oauth_error(response, 413) == {"error": "invalid_request", "error_description": "request body too large"}


def test_a_form_over_64_kib_on_a_persons_page_is_a_413_page(http: httpx.Client) -> None:
    response = http.post("/interaction/some-interaction/login", content=b"username=" + b"x" * 70_000, headers=FORM)
    assert response.headers["content-type"].startswith("text/html")
    assert error_page(response, 413) == ("invalid_request", "request body too large")
    assert response.headers["content-language"] == "zh-CN"


def test_a_chunked_body_over_64_kib_is_413(http: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"grant_type=authorization_code&code="
        for _ in range(20):
            yield b"a" * 4096

    response = http.post("/token", content=chunks(), headers=FORM)
    assert oauth_error(response, 413) == {"error": "invalid_request", "error_description": "request body too large"}


@pytest.mark.parametrize("header", [
    b"Basic !!!notbase64",
    b"Basic " + base64.b64encode(b"\xff\xfe:\xfd"),
    b"Basic \xff\xfe",
    b"Basic " + base64.b64encode(b"no-colon-here"),
], ids=["not-base64", "not-utf8", "raw-bytes", "no-colon"])
def test_a_malformed_basic_header_is_401_invalid_client(http: httpx.Client, header: bytes) -> None:
    response = http.post("/token", data={"grant_type": "authorization_code", "code": "x"},
                         headers={"Authorization": header})
    assert oauth_error(response, 401) == {"error": "invalid_client",
                                          "error_description": "the Authorization header is not valid Basic credentials"}
    assert response.headers["www-authenticate"] == 'Basic realm="yihao"'


@pytest.mark.parametrize("credentials", [b"a\x00b:secret", b"a%00b:secret", b"client:se%00cret"],
                         ids=["nul", "percent-nul", "nul-in-secret"])
def test_basic_credentials_with_a_nul_character_are_401_invalid_client(http: httpx.Client, credentials: bytes) -> None:
    response = http.post("/token", data={"grant_type": "authorization_code", "code": "x"}, headers=basic(credentials))
    assert oauth_error(response, 401) == {"error": "invalid_client",
                                          "error_description": "the Authorization header is not valid Basic credentials"}


def test_a_code_issued_to_another_client_is_invalid_grant(make_rp: RpFactory, person: Person,
                                                          browser: Browser) -> None:
    owner, thief = make_rp(first_party=True), make_rp(first_party=True)
    code, verifier = a_code(owner, person, browser)
    thief.redirect_uri = owner.redirect_uri
    response = thief.exchange(code, verifier)
    assert oauth_error(response, 400) == {"error": "invalid_grant", "error_description": "Invalid 'code' in request."}


def test_a_redirect_uri_at_the_token_endpoint_differing_from_the_one_used_is_invalid_grant(
        make_rp: RpFactory, person: Person, browser: Browser) -> None:
    rp = make_rp(first_party=True)
    code, verifier = a_code(rp, person, browser)
    rp.redirect_uri += "/"
    response = rp.exchange(code, verifier)
    assert oauth_error(response, 400) == {"error": "invalid_grant",
                                          "error_description": "Invalid 'redirect_uri' in request."}


# -- the authorization endpoint -----------------------------------------------------------------

@pytest.mark.parametrize("query,description", [
    (b"client_id=%ff%fe", "the query string is not valid UTF-8 form encoding"),
    (b"client_id=a%00b", "the query string contains a NUL character"),
], ids=["percent-encoded", "nul"])
def test_an_undecodable_authorization_query_shows_a_page(http: httpx.Client, query: bytes, description: str) -> None:
    response = http.get(httpx.URL("/authorize", query=query))
    assert error_page(response) == ("invalid_request", description)


@pytest.mark.parametrize("session", ["x" * 4000, "\\377\\376", '"unbalanced', "a=b=c;;"])
def test_a_garbage_session_cookie_is_ignored_and_the_login_page_shows(make_rp: RpFactory, browser: Browser,
                                                                      session: str) -> None:
    rp = make_rp()
    browser.http.cookies.set("yihao_session", session)
    page = browser.follow(browser.get(rp.authorization().url), rp.redirect_uri)
    assert page.status_code == 200 and parse_form(page.text)["action"].endswith("/login")


def test_a_json_authorization_post_shows_a_page(http: httpx.Client, make_rp: RpFactory) -> None:
    rp = make_rp()
    response = http.post("/authorize", json={"client_id": rp.client_id, "response_type": "code"})
    assert error_page(response) == ("invalid_request", "the body must be application/x-www-form-urlencoded")


def test_an_authorization_post_with_invalid_utf8_shows_a_page(http: httpx.Client) -> None:
    response = http.post("/authorize", content=b"client_id=\xff", headers=FORM)
    assert error_page(response) == ("invalid_request", "the request body is not valid UTF-8")


def test_a_wrong_method_on_a_page_is_a_readable_405_page(http: httpx.Client) -> None:
    response = http.delete("/authorize")
    assert error_page(response, 405) == ("method_not_allowed", "DELETE is not allowed here; use GET, HEAD, POST")
    assert response.headers["allow"] == "GET, HEAD, POST"


# -- the interaction pages ----------------------------------------------------------------------

def interaction(browser: Browser, rp: RelyingParty) -> httpx.Response:
    """The login page a fresh authorization request leads to."""
    page = browser.follow(browser.get(rp.authorization().url), rp.redirect_uri)
    assert parse_form(page.text)["action"].endswith("/login")
    return page


def test_a_login_post_with_a_wrong_csrf_token_is_403_and_starts_no_session(make_rp: RpFactory, person: Person,
                                                                          browser: Browser) -> None:
    rp = make_rp(first_party=True)
    page = interaction(browser, rp)
    response = browser.http.post(str(page.url) + "/login", data={"csrf_token": "forged", "username": person.username,
                                                                 "password": person.password})
    assert response.status_code == 403 and "Traceback" not in response.text
    assert "页面已过期，请重新提交。" in response.text
    assert "yihao_session" not in browser.http.cookies


def test_a_login_post_without_a_form_body_is_403(make_rp: RpFactory, browser: Browser) -> None:
    page = interaction(browser, make_rp())
    response = browser.http.post(str(page.url) + "/login", content=b"\xff\xfe", headers=FORM)
    assert response.status_code == 403 and "页面已过期，请重新提交。" in response.text


def test_an_interaction_opened_in_another_browser_is_an_error_page_not_the_login_form(
        make_rp: RpFactory, browser: Browser) -> None:
    page = interaction(browser, make_rp())
    with httpx.Client(follow_redirects=False) as other:
        response = other.get(str(page.url))
    assert error_page(response) == ("interaction_expired", "this sign-in has already been completed or has expired")
    assert "/login" not in parse_form(response.text).get("action", "")


def test_a_login_post_from_another_browser_is_refused_even_with_the_csrf_token(make_rp: RpFactory, person: Person,
                                                                              browser: Browser) -> None:
    page = interaction(browser, make_rp())
    form = parse_form(page.text)
    with httpx.Client(follow_redirects=False) as other:
        response = other.post(str(page.url) + "/login", data={"csrf_token": form["csrf_token"],
                                                              "username": person.username, "password": person.password})
    assert error_page(response) == ("interaction_expired", "this sign-in has already been completed or has expired")
    assert "set-cookie" not in response.headers


@pytest.mark.parametrize("uid", ["no-such-interaction", "x" * 200, "%ff%fe"])
def test_an_unknown_interaction_is_a_readable_page_with_the_error_code(http: httpx.Client, uid: str) -> None:
    response = http.get(f"/interaction/{uid}")
    assert error_page(response) == ("interaction_expired", "this sign-in has already been completed or has expired")
    assert "登录已完成或已超时，请返回应用重新登录。" in response.text


def test_a_completed_interaction_cannot_be_submitted_again(make_rp: RpFactory, person: Person,
                                                           browser: Browser) -> None:
    rp = make_rp(first_party=True)
    page = interaction(browser, rp)
    form = parse_form(page.text)
    data = {"csrf_token": form["csrf_token"], "username": person.username, "password": person.password}
    first = browser.http.post(str(page.url) + "/login", data=data)
    assert "code" in callback_params(first)
    again = browser.http.post(str(page.url) + "/login", data=data)
    assert error_page(again) == ("interaction_expired", "this sign-in has already been completed or has expired")


def test_the_unknown_interaction_page_is_english_on_request(http: httpx.Client) -> None:
    response = http.get("/interaction/no-such-interaction", headers={"Accept-Language": "en"})
    assert '<html lang="en">' in response.text
    assert ("This sign-in has been completed or has expired; go back to the application and sign in again."
            in response.text)


def test_an_unknown_path_under_the_token_endpoint_is_a_json_404(http: httpx.Client) -> None:
    assert oauth_error(http.get("/token/x"), 404) == {"error": "not_found", "error_description": "Not Found"}


def test_query_encoded_authorization_errors_are_url_encoded(provider: Provider, make_rp: RpFactory,
                                                            browser: Browser) -> None:
    rp = make_rp()
    state = "&evil=1"
    query = urlencode({"response_type": "token", "client_id": rp.client_id, "redirect_uri": rp.redirect_uri,
                       "state": state})
    params = callback_params(browser.get(rp.metadata["authorization_endpoint"] + "?" + query))
    assert params["state"] == state and "evil" not in params


# -- JSON nested too deeply for the parser --------------------------------------------------------

DEEP_JSON = b"[" * 6000 + b"]" * 6000  # deeper than the standard parser's recursion limit
DEEP_JWT = base64.urlsafe_b64encode(DEEP_JSON).rstrip(b"=").decode() + ".e30.AA"
# deep enough for the parser, short enough for the limits checked before it (a DPoP proof: 8192)
DEEP_SHORT = base64.urlsafe_b64encode(b"[" * 3000 + b"]" * 3000).rstrip(b"=").decode()


def test_a_token_with_a_deeply_nested_header_is_refused_by_the_machine_endpoints(http: httpx.Client,
                                                                                 make_rp: RpFactory) -> None:
    confidential, public = make_rp(), make_rp(public=True)
    assert confidential.client_secret is not None
    secret = basic(f"{confidential.client_id}:{confidential.client_secret}".encode())
    introspected = http.post("/introspect", data={"token": DEEP_JWT}, headers=secret)
    assert introspected.status_code == 200 and introspected.json() == {"active": False}
    revoked = http.post("/revoke", data={"token": DEEP_JWT, "client_id": public.client_id})
    assert revoked.status_code == 200
    userinfo = http.get("/userinfo", headers={"Authorization": f"Bearer {DEEP_JWT}"})
    assert userinfo.status_code == 401 and "invalid_token" in userinfo.headers["www-authenticate"]
    proof = http.post("/token", data={"grant_type": "client_credentials"},
                      headers=secret | {"DPoP": DEEP_SHORT + ".e30.AA"})
    assert oauth_error(proof, 400)["error"] == "invalid_dpop_proof"


def test_a_client_assertion_with_a_deeply_nested_payload_is_invalid_client(http: httpx.Client) -> None:
    header = base64.urlsafe_b64encode(b'{"alg":"RS256"}').rstrip(b"=").decode()
    assertion = f"{header}.{DEEP_SHORT}.AA"
    response = http.post("/token", data={
        "grant_type": "client_credentials", "client_assertion": assertion,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"})
    # RFC 6749 §5.2: 401 is required only of a client that authenticated with the Authorization header
    assert oauth_error(response, 400) == {"error": "invalid_client",
                                          "error_description": "client_assertion is not a valid JWT"}


def test_an_id_token_hint_with_a_deeply_nested_header_gets_a_page_not_a_500(http: httpx.Client,
                                                                           make_rp: RpFactory) -> None:
    rp = make_rp()
    authorize = http.get(rp.authorization(id_token_hint=DEEP_JWT).url)
    assert authorize.status_code < 500 and "Traceback" not in authorize.text
    logout = http.get("/logout", params={"id_token_hint": DEEP_JWT})
    assert logout.status_code == 200 and "Traceback" not in logout.text  # the confirmation page


@pytest.mark.parametrize("resource", ["https://api.example.gov.cn/中", "https://a.example/it's", "https://a.example/a\\b"])
def test_a_resource_the_error_description_cannot_quote_is_still_invalid_target(http: httpx.Client, make_rp: RpFactory,
                                                                               resource: str) -> None:
    rp = make_rp(grant_types=["authorization_code", "client_credentials"])
    assert rp.client_secret is not None
    at_token = http.post("/token", data={"grant_type": "client_credentials", "resource": resource},
                         headers=basic(f"{rp.client_id}:{rp.client_secret}".encode()))
    assert oauth_error(at_token, 400) == {
        "error": "invalid_target",
        "error_description": "resource (a value that cannot be shown) was not granted to this client"}
    at_authorize = http.get(rp.authorization(resource=resource).url)
    assert at_authorize.status_code in (302, 303)
    assert callback_params(at_authorize)["error"] == "invalid_target"
