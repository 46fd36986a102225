"""The Dynamic OP certification plan (oidcc-dynamic-certification-test-plan), module by module."""
from __future__ import annotations

import uuid

import httpx
from joserfc import jws

from idp import jose
from tests.conformance.conftest import Suite, authorization_response, conformance, id_token_claims
from tests.rp import register


def _redirect() -> str:
    return f"https://rp-{uuid.uuid4().hex[:8]}.example.org/cb"


@conformance("oidcc-idtoken-rs256")
def test_oidcc_idtoken_rs256(suite: Suite) -> None:
    rp = suite.client(id_token_signed_response_alg="RS256")
    _auth, tokens, _claims = suite.code_flow(rp)
    assert jws.extract_compact(tokens["id_token"].encode()).protected["alg"] == "RS256"


@conformance("oidcc-userinfo-rs256")
def test_oidcc_userinfo_rs256(suite: Suite) -> None:
    rp = suite.client(userinfo_signed_response_alg="RS256")
    _auth, tokens, claims = suite.code_flow(rp)
    response = rp.userinfo(tokens["access_token"])
    assert response.headers["content-type"] == "application/jwt"
    assert jose.header(response.text)["alg"] == "RS256"
    assert rp.validate_userinfo_jwt(response.text)["sub"] == claims["sub"]


@conformance("oidcc-ensure-redirect-uri-in-authorization-request")
def test_oidcc_ensure_redirect_uri_in_authorization_request(suite: Suite) -> None:
    rp = suite.client()
    url = rp.authorization().url.replace("redirect_uri=", "ignored=")
    response = suite.browser.get(url)
    assert response.status_code == 400 and "location" not in response.headers
    assert "redirect_uri is required" in response.text


@conformance("oidcc-redirect-uri-query-ok")
def test_oidcc_redirect_uri_query_ok(suite: Suite) -> None:
    rp = suite.client(redirect_uris=[_redirect() + "?foo=bar"])
    auth, response = suite.authorize(rp)
    params = authorization_response(suite.op, response, auth)
    assert params["foo"] == "bar"  # the registered query survives, the response is added to it
    id_token_claims(rp, rp.fetch_token(params["code"], auth.verifier), auth.nonce)


@conformance("oidcc-redirect-uri-query-mismatch")
def test_oidcc_redirect_uri_query_mismatch(suite: Suite) -> None:
    rp = suite.client(redirect_uris=[_redirect() + "?foo=bar"])
    rp.redirect_uri = rp.redirect_uri.replace("foo=bar", "foo=zot")
    response = suite.browser.get(rp.authorization().url)
    assert response.status_code == 400 and "location" not in response.headers
    assert "redirect_uri does not exactly match a registered redirect URI" in response.text


@conformance("oidcc-redirect-uri-query-added")
def test_oidcc_redirect_uri_query_added(suite: Suite) -> None:
    rp = suite.client()
    rp.redirect_uri += "?foo=bar"
    response = suite.browser.get(rp.authorization().url)
    assert response.status_code == 400 and "location" not in response.headers
    assert "redirect_uri does not exactly match a registered redirect URI" in response.text


@conformance("oidcc-redirect-uri-regfrag")
def test_oidcc_redirect_uri_regfrag(suite: Suite) -> None:
    uri = _redirect() + "#foo"
    response = register(suite.op.url, {"client_name": "regfrag", "redirect_uris": [uri]})
    assert response.status_code == 400 and response.json() == {
        "error": "invalid_redirect_uri", "error_description": f"redirect_uri {uri!r} must not contain a fragment"}


def _shown_on_consent(suite: Suite, field: str, value: str) -> None:
    rp = suite.client(**{field: value})
    auth = rp.authorization()
    page = suite.browser.follow(suite.browser.get(auth.url), rp.redirect_uri)
    page = suite.browser.login(str(page.url), suite.person.username, suite.person.password,
                               stop_at=rp.redirect_uri, consent=None)
    assert value in page.text  # the person sees it where they decide
    response = suite.browser.consent(page, "approve", rp.redirect_uri)
    id_token_claims(rp, rp.fetch_token(authorization_response(suite.op, response, auth)["code"], auth.verifier),
                    auth.nonce)


@conformance("oidcc-registration-logo-uri")
def test_oidcc_registration_logo_uri(suite: Suite) -> None:
    _shown_on_consent(suite, "logo_uri", "https://cdn.example.org/logo.png")


@conformance("oidcc-registration-policy-uri")
def test_oidcc_registration_policy_uri(suite: Suite) -> None:
    _shown_on_consent(suite, "policy_uri", "https://rp.example.org/privacy")


@conformance("oidcc-registration-tos-uri")
def test_oidcc_registration_tos_uri(suite: Suite) -> None:
    _shown_on_consent(suite, "tos_uri", "https://rp.example.org/terms")


@conformance("oidcc-registration-sector-uri")
def test_oidcc_registration_sector_uri(suite: Suite) -> None:
    redirect = _redirect()
    sector = suite.documents.publish([redirect, _redirect()])
    rp = suite.client(redirect_uris=[redirect], subject_type="pairwise", sector_identifier_uri=sector)
    _auth, _tokens, claims = suite.code_flow(rp)
    assert claims["sub"] != suite.person.id


@conformance("oidcc-registration-sector-bad")
def test_oidcc_registration_sector_bad(suite: Suite) -> None:
    redirect = _redirect()
    sector = suite.documents.publish([_redirect()])  # does not hold the client's redirect URI
    response = register(suite.op.url, {"redirect_uris": [redirect], "subject_type": "pairwise",
                                       "sector_identifier_uri": sector})
    assert response.status_code == 400 and response.headers["content-type"] == "application/json"
    assert response.json() == {"error": "invalid_client_metadata", "error_description":
                               f"sector_identifier_uri {sector!r} does not list redirect_uri {redirect!r}"}


@conformance("oidcc-server-rotate-keys")
def test_oidcc_server_rotate_keys(suite: Suite) -> None:
    rp = suite.client()
    _auth, before, _claims = suite.code_flow(rp)
    old_kid = jose.header(before["id_token"])["kid"]
    suite.op.core.keys.rotate(retire_after=900)  # what `yihao keys rotate` does
    after, _claims = suite.signed_in_again(rp, prompt="login")  # verified against the JWKS fetched again
    new_kid = jose.header(after["id_token"])["kid"]
    assert new_kid != old_kid and {old_kid, new_kid} <= {key["kid"] for key in httpx.get(rp.metadata["jwks_uri"]).json()["keys"]}
