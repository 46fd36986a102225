"""The Basic OP certification plan (oidcc-basic-certification-test-plan), module by module."""
from __future__ import annotations

import json
import time
from urllib.parse import urlencode

import httpx
import pytest
from joserfc import jws

from idp.crypto import b64u
from tests.conformance.conftest import Suite, authorization_response, conformance, id_token_claims
from tests.idp.conftest import serve_provider
from tests.rp import RelyingParty, callback_params, introspect


def _error(suite: Suite, response: httpx.Response) -> tuple[str, str]:
    assert response.is_redirect
    params = callback_params(response)
    assert params["iss"] == suite.op.url
    return params["error"], params.get("error_description", "")


def _error_page(response: httpx.Response) -> str:
    """The OP shows an error and does not redirect (OIDCC-3.1.2.6 with an untrusted redirect URI)."""
    assert response.status_code == 400 and "location" not in response.headers
    return response.text


@conformance("oidcc-server")
def test_oidcc_server(suite: Suite) -> None:
    rp = suite.client()
    _auth, tokens, claims = suite.code_flow(rp)
    assert claims["iss"] == suite.op.url and claims["exp"] > time.time() >= claims["iat"] - 5
    userinfo = rp.userinfo(tokens["access_token"])
    assert userinfo.status_code == 200 and userinfo.json()["sub"] == claims["sub"]


@conformance("oidcc-server-client-secret-post")
def test_oidcc_server_client_secret_post(suite: Suite) -> None:
    rp = suite.client(token_endpoint_auth_method="client_secret_post")
    auth, response = suite.authorize(rp)
    code = authorization_response(suite.op, response, auth)["code"]
    answer = httpx.post(rp.metadata["token_endpoint"], data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": rp.redirect_uri,
        "code_verifier": auth.verifier, "client_id": rp.client_id, "client_secret": rp.client_secret})
    assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
    id_token_claims(rp, answer.json(), auth.nonce)


@conformance("oidcc-response-type-missing")
def test_oidcc_response_type_missing(suite: Suite) -> None:
    rp = suite.client()
    query = {"client_id": rp.client_id, "redirect_uri": rp.redirect_uri, "scope": "openid", "state": "s"}
    response = suite.browser.get(rp.metadata["authorization_endpoint"] + "?" + urlencode(query))
    assert _error(suite, response) == ("invalid_request", "response_type is required")


@conformance("oidcc-idtoken-signature")
def test_oidcc_idtoken_signature(suite: Suite) -> None:
    rp = suite.client()
    _auth, tokens, _claims = suite.code_flow(rp)
    header = jws.extract_compact(tokens["id_token"].encode()).protected
    assert header["alg"] == "RS256" and header["kid"] in {key.kid for key in rp.jwks()}


@conformance("oidcc-idtoken-unsigned")
def test_oidcc_idtoken_unsigned(suite: Suite) -> None:
    """The module is skipped when `none` is not advertised; registering it is refused."""
    rp = suite.client()
    assert "none" not in rp.metadata["id_token_signing_alg_values_supported"]
    refused = httpx.post(rp.metadata["registration_endpoint"], json={
        "redirect_uris": [rp.redirect_uri], "id_token_signed_response_alg": "none"})
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_client_metadata"


@conformance("oidcc-userinfo-get")
def test_oidcc_userinfo_get(suite: Suite) -> None:
    rp = suite.client()
    _auth, tokens, claims = suite.code_flow(rp)
    assert rp.userinfo(tokens["access_token"]).json()["sub"] == claims["sub"]


@conformance("oidcc-userinfo-post-header")
def test_oidcc_userinfo_post_header(suite: Suite) -> None:
    rp = suite.client()
    _auth, tokens, claims = suite.code_flow(rp)
    response = httpx.post(rp.metadata["userinfo_endpoint"], headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert response.status_code == 200 and response.json()["sub"] == claims["sub"]


@conformance("oidcc-userinfo-post-body")
def test_oidcc_userinfo_post_body(suite: Suite) -> None:
    rp = suite.client()
    _auth, tokens, claims = suite.code_flow(rp)
    response = httpx.post(rp.metadata["userinfo_endpoint"], data={"access_token": tokens["access_token"]})
    assert response.status_code == 200 and response.json()["sub"] == claims["sub"]


@conformance("oidcc-ensure-request-without-nonce-succeeds-for-code-flow")
def test_oidcc_ensure_request_without_nonce_succeeds_for_code_flow(suite: Suite) -> None:
    rp = suite.client()
    suite.code_flow(rp)  # signed in and consented: the request below comes straight back
    auth = rp.authorization()
    without_nonce = auth.url.replace(f"&nonce={auth.nonce}", "")
    assert "nonce=" not in without_nonce
    code = authorization_response(suite.op, suite.browser.get(without_nonce), auth)["code"]
    claims = id_token_claims(rp, rp.fetch_token(code, auth.verifier), None)
    assert "nonce" not in claims and claims["aud"] == rp.client_id


def _scope_claims(suite: Suite, scope: str) -> dict[str, object]:
    rp = suite.client()
    _auth, tokens, _claims = suite.code_flow(rp, scope=scope)
    return dict(rp.userinfo(tokens["access_token"]).json())


@conformance("oidcc-scope-profile")
def test_oidcc_scope_profile(suite: Suite) -> None:
    claims = _scope_claims(suite, "openid profile")
    assert claims["name"] == "赵六" and "email" not in claims


@conformance("oidcc-scope-email")
def test_oidcc_scope_email(suite: Suite) -> None:
    claims = _scope_claims(suite, "openid email")
    assert claims["email"] == f"{suite.person.username}@example.org" and claims["email_verified"] is True
    assert "name" not in claims


@conformance("oidcc-scope-phone")
def test_oidcc_scope_phone(suite: Suite) -> None:
    claims = _scope_claims(suite, "openid phone")
    assert claims["phone_number"] == "+8613900000000" and claims["phone_number_verified"] is True


def _address_is_not_offered(suite: Suite) -> None:
    """The module skips itself when scopes_supported lacks `address`; asking for it is invalid_scope."""
    rp = suite.client()
    assert "address" not in rp.metadata["scopes_supported"]
    _auth, response = suite.authorize(rp, scope="openid profile email address phone")
    assert _error(suite, response)[0] == "invalid_scope"


@conformance("oidcc-scope-address")
def test_oidcc_scope_address(suite: Suite) -> None:
    _address_is_not_offered(suite)


@conformance("oidcc-scope-all")
def test_oidcc_scope_all(suite: Suite) -> None:
    _address_is_not_offered(suite)


@conformance("oidcc-ensure-other-scope-order-succeeds")
def test_oidcc_ensure_other_scope_order_succeeds(suite: Suite) -> None:
    rp = suite.client()
    _auth, tokens, _claims = suite.code_flow(rp, scope="email openid")
    assert "email" in rp.userinfo(tokens["access_token"]).json()


@conformance("oidcc-display-page")
def test_oidcc_display_page(suite: Suite) -> None:
    suite.code_flow(suite.client(), display="page")


@conformance("oidcc-display-popup")
def test_oidcc_display_popup(suite: Suite) -> None:
    suite.code_flow(suite.client(), display="popup")


@conformance("oidcc-prompt-login")
def test_oidcc_prompt_login(suite: Suite) -> None:
    rp = suite.client()
    _auth, _tokens, first = suite.code_flow(rp)
    time.sleep(1.1)
    _tokens, second = suite.signed_in_again(rp, prompt="login")
    assert second["auth_time"] > first["auth_time"] and second["sub"] == first["sub"]


@conformance("oidcc-prompt-none-not-logged-in")
def test_oidcc_prompt_none_not_logged_in(suite: Suite) -> None:
    rp = suite.client()
    response = suite.browser.get(rp.authorization(prompt="none").url)
    assert _error(suite, response) == ("login_required", "the end-user is not logged in")


@conformance("oidcc-prompt-none-logged-in")
def test_oidcc_prompt_none_logged_in(suite: Suite) -> None:
    rp = suite.client()
    _auth, _tokens, first = suite.code_flow(rp)
    second = suite.silently(rp, prompt="none")
    assert second["sub"] == first["sub"] and second["auth_time"] == first["auth_time"]


@conformance("oidcc-max-age-1")
def test_oidcc_max_age_1(suite: Suite) -> None:
    rp = suite.client()
    _auth, _tokens, first = suite.code_flow(rp)
    time.sleep(2.1)
    _tokens, second = suite.signed_in_again(rp, max_age="1")  # older than max_age: sign in again
    assert second["auth_time"] > first["auth_time"] and time.time() - second["auth_time"] < 30


@conformance("oidcc-max-age-10000")
def test_oidcc_max_age_10000(suite: Suite) -> None:
    rp = suite.client()
    _auth, _tokens, first = suite.code_flow(rp)
    assert suite.silently(rp, max_age="10000")["auth_time"] == first["auth_time"]


@conformance("oidcc-ensure-request-with-unknown-parameter-succeeds")
def test_oidcc_ensure_request_with_unknown_parameter_succeeds(suite: Suite) -> None:
    suite.code_flow(suite.client(), extra_param="foobar")


@conformance("oidcc-id-token-hint")
def test_oidcc_id_token_hint(suite: Suite) -> None:
    rp = suite.client()
    _auth, tokens, first = suite.code_flow(rp)
    assert suite.silently(rp, prompt="none", id_token_hint=tokens["id_token"])["sub"] == first["sub"]


@conformance("oidcc-login-hint")
def test_oidcc_login_hint(suite: Suite) -> None:
    rp = suite.client()
    auth = rp.authorization(login_hint=suite.person.username)
    page = suite.browser.follow(suite.browser.get(auth.url), rp.redirect_uri)
    assert f'value="{suite.person.username}"' in page.text  # the sign-in form is pre-filled
    suite.code_flow(rp, login_hint=suite.person.username)


@conformance("oidcc-ui-locales")
def test_oidcc_ui_locales(suite: Suite) -> None:
    rp = suite.client()
    page = suite.browser.follow(suite.browser.get(rp.authorization(ui_locales="en").url), rp.redirect_uri)
    assert page.headers["content-language"] == "en"
    suite.code_flow(rp, ui_locales="en")


@conformance("oidcc-claims-locales")
def test_oidcc_claims_locales(suite: Suite) -> None:
    rp = suite.client()
    _auth, tokens, _claims = suite.code_flow(rp, claims_locales="zh-CN", scope="openid profile")
    assert rp.userinfo(tokens["access_token"]).json()["name"] == "赵六"


@conformance("oidcc-ensure-request-with-acr-values-succeeds")
def test_oidcc_ensure_request_with_acr_values_succeeds(suite: Suite) -> None:
    _auth, _tokens, claims = suite.code_flow(suite.client(), acr_values="loa/1 loa/2")
    assert claims["acr"] == "loa/1"


@conformance("oidcc-codereuse")
def test_oidcc_codereuse(suite: Suite) -> None:
    rp = suite.client()
    auth, response = suite.authorize(rp)
    code = authorization_response(suite.op, response, auth)["code"]
    first = rp.fetch_token(code, auth.verifier)
    again = rp.exchange(code, auth.verifier)
    assert again.status_code == 400 and again.headers["content-type"].startswith("application/json")
    assert again.json()["error"] == "invalid_grant"
    assert introspect(rp, first["access_token"]).json() == {"active": False}  # OP-OAuth-2nd-Revokes


@conformance("oidcc-codereuse-30seconds")
def test_oidcc_codereuse_30seconds(suite: Suite, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Reuse after a pause longer than the code's own life (5 s here; the module waits 30 s against
    the 60 s default) is still recognised as reuse: invalid_grant, and the first tokens revoked."""
    with serve_provider(suite.op.backend, tmp_path_factory.mktemp("short"), YIHAO_REGISTRATION="open",
                        YIHAO_CODE_TTL="5") as short:
        rp = type(suite)(short, suite.person, suite.browser, suite.documents).client()
        auth, response = type(suite)(short, suite.person, suite.browser, suite.documents).authorize(rp)
        code = authorization_response(short, response, auth)["code"]
        first = rp.fetch_token(code, auth.verifier)
        time.sleep(6)
        again = rp.exchange(code, auth.verifier)
        assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
        assert introspect(rp, first["access_token"]).json() == {"active": False}


@conformance("oidcc-ensure-registered-redirect-uri")
def test_oidcc_ensure_registered_redirect_uri(suite: Suite) -> None:
    rp = suite.client()
    rp.redirect_uri = "https://attacker.example.net/cb"
    page = _error_page(suite.browser.get(rp.authorization().url))
    assert "redirect_uri does not exactly match a registered redirect URI" in page


@conformance("oidcc-ensure-post-request-succeeds")
def test_oidcc_ensure_post_request_succeeds(suite: Suite) -> None:
    rp = suite.client()
    auth = rp.authorization()
    endpoint, _, query = auth.url.partition("?")
    posted = suite.browser.http.post(endpoint, content=query, headers={"Content-Type": "application/x-www-form-urlencoded"})
    page = suite.browser.follow(posted, rp.redirect_uri)
    response = suite.browser.login(str(page.url), suite.person.username, suite.person.password, stop_at=rp.redirect_uri)
    code = authorization_response(suite.op, response, auth)["code"]
    id_token_claims(rp, rp.fetch_token(code, auth.verifier), auth.nonce)


def _unsigned(params: dict[str, str]) -> str:
    header, payload = json.dumps({"alg": "none"}).encode(), json.dumps(params).encode()
    return f"{b64u(header)}.{b64u(payload)}."


@conformance("oidcc-request-uri-unsigned-supported-correctly-or-rejected-as-unsupported")
def test_oidcc_request_uri_unsigned_supported_correctly_or_rejected_as_unsupported(suite: Suite) -> None:
    # supported: a client that registered the request_uri and request_object_signing_alg none
    request_uri = suite.documents.publish({})
    rp = suite.client(request_uris=[request_uri], request_object_signing_alg="none")
    assert rp.metadata["request_uri_parameter_supported"] is True

    def by_reference(rp: RelyingParty, params: dict[str, str]) -> str:
        suite.documents.pages[request_uri[len(suite.documents.url):]] = (200, _unsigned(params).encode(), 0.0)
        return rp.authorize_url(client_id=rp.client_id, request_uri=request_uri)

    _auth, _tokens, claims = suite.code_flow(rp, by_reference)
    assert claims["aud"] == rp.client_id


@conformance("oidcc-unsigned-request-object-supported-correctly-or-rejected-as-unsupported")
def test_oidcc_unsigned_request_object_supported_correctly_or_rejected_as_unsupported(suite: Suite) -> None:
    rp = suite.client(request_object_signing_alg="none")
    assert rp.metadata["request_parameter_supported"] is True
    by_value = lambda rp, params: rp.authorize_url(client_id=rp.client_id, request=_unsigned(params))  # noqa: E731
    _auth, _tokens, claims = suite.code_flow(rp, by_value)
    assert claims["aud"] == rp.client_id


@conformance("oidcc-claims-essential")
def test_oidcc_claims_essential(suite: Suite) -> None:
    rp = suite.client()
    _auth, tokens, _claims = suite.code_flow(rp, claims=json.dumps({"userinfo": {"name": {"essential": True}}}))
    assert rp.userinfo(tokens["access_token"]).json()["name"] == "赵六"


@conformance("oidcc-refresh-token")
def test_oidcc_refresh_token(suite: Suite) -> None:
    from tests.rp import refresh

    rp = suite.client()
    rp.scope = "openid offline_access"
    _auth, tokens, first = suite.code_flow(rp, prompt="consent")
    renewed = refresh(rp, tokens["refresh_token"])
    assert renewed["access_token"] != tokens["access_token"] and renewed["refresh_token"] != tokens["refresh_token"]
    if "id_token" in renewed:  # OIDC Core §12.2
        from joserfc import jwt

        claims = jwt.decode(renewed["id_token"], rp.jwks()).claims
        assert (claims["iss"], claims["sub"], claims["aud"], claims["auth_time"]) == \
            (first["iss"], first["sub"], first["aud"], first["auth_time"])
    assert rp.userinfo(renewed["access_token"]).status_code == 200


@conformance("oidcc-ensure-request-with-valid-pkce-succeeds")
def test_oidcc_ensure_request_with_valid_pkce_succeeds(suite: Suite) -> None:
    auth, tokens, _claims = suite.code_flow(suite.client())
    assert auth.verifier and "code_challenge=" in auth.url and "code_challenge_method=S256" in auth.url
