"""The OpenID Foundation's OP test modules, re-enacted: a provider with open registration, clients
registered dynamically, a person signing in through a browser, and a relying party (authlib's client,
tests/rp.py) checking what the certification module checks.

Each test carries `@conformance("<module name>")`; the README's table is checked against them.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Callable, Iterator
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from tests.conftest import Backend
from tests.idp.conftest import Documents, Person, Provider, documents, serve_provider  # noqa: F401  (fixture)
from tests.rp import AuthRequest, Browser, RelyingParty, callback_params, register, registered_rp


def conformance(module: str) -> pytest.MarkDecorator:
    """Names the certification test module a test re-enacts."""
    return pytest.mark.conformance(module)


@pytest.fixture(scope="session")
def op(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    """The provider under test, configured as for the Dynamic plan: open registration, and the
    loopback document server reachable for sector_identifier_uri."""
    with serve_provider(backend, tmp_path_factory.mktemp("op"), YIHAO_REGISTRATION="open",
                        YIHAO_EGRESS_ALLOW="127.0.0.0/8") as provider:
        yield provider


Wrap = Callable[[RelyingParty, dict[str, str]], str]


@dataclass
class Suite:
    """What a test module drives: the OP, a person, a browser and dynamically registered clients."""

    op: Provider
    person: Person
    browser: Browser
    documents: Documents

    def client(self, **metadata: Any) -> RelyingParty:
        """A client registered through the registration endpoint (the dynamic_client variant)."""
        body = {"client_name": "conformance RP", "redirect_uris": [f"https://rp-{uuid.uuid4().hex[:8]}.example.org/cb"],
                "grant_types": ["authorization_code", "refresh_token"],
                "scope": "openid profile email phone offline_access", **metadata}
        return registered_rp(self.op.url, register(self.op.url, body), scope="openid")

    def authorize(self, rp: RelyingParty, wrap: Wrap | None = None, **params: str) -> tuple[AuthRequest, httpx.Response]:
        """Send the person to the authorization endpoint; sign in and approve if asked. `wrap` turns the
        request into another URL carrying the same parameters (a request object)."""
        auth = rp.authorization(**params)
        url = wrap(rp, dict(parse_qsl(urlsplit(auth.url).query))) if wrap else auth.url
        page = self.browser.follow(self.browser.get(url), rp.redirect_uri)
        if page.is_redirect:
            return auth, page
        if 'name="password"' in page.text:
            page = self.browser.login(str(page.url), self.person.username, self.person.password,
                                      stop_at=rp.redirect_uri, consent=None)
        if not page.is_redirect and "/consent" in page.text:
            page = self.browser.consent(page, "approve", rp.redirect_uri)
        return auth, page

    def code_flow(self, rp: RelyingParty, wrap: Wrap | None = None,
                  **params: str) -> tuple[AuthRequest, dict[str, Any], dict[str, Any]]:
        """A complete code flow: the token response and the ID token's claims, checked as the suite does."""
        auth, response = self.authorize(rp, wrap, **params)
        returned = authorization_response(self.op, response, auth)
        tokens = rp.fetch_token(returned["code"], auth.verifier)
        return auth, tokens, id_token_claims(rp, tokens, auth.nonce)

    def signed_in_again(self, rp: RelyingParty, **params: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """A request that must show the sign-in page although a session exists; tokens and ID token claims."""
        auth = rp.authorization(**params)
        page = self.browser.follow(self.browser.get(auth.url), rp.redirect_uri)
        assert 'name="password"' in page.text, "expected the person to be asked to sign in again"
        response = self.browser.login(str(page.url), self.person.username, self.person.password,
                                      stop_at=rp.redirect_uri)
        tokens = rp.fetch_token(authorization_response(self.op, response, auth)["code"], auth.verifier)
        return tokens, id_token_claims(rp, tokens, auth.nonce)

    def silently(self, rp: RelyingParty, **params: str) -> dict[str, Any]:
        """A request answered at once from the session, no page shown; the ID token's claims."""
        auth = rp.authorization(**params)
        code = authorization_response(self.op, self.browser.get(auth.url), auth)["code"]
        return id_token_claims(rp, rp.fetch_token(code, auth.verifier), auth.nonce)


def authorization_response(op: Provider, response: httpx.Response, auth: AuthRequest) -> dict[str, str]:
    """The suite's checks on the authorization response: a redirect, state echoed, iss (RFC 9207)."""
    assert response.is_redirect, f"expected a redirect to the client, got {response.status_code}"
    params = callback_params(response)
    assert "error" not in params, params
    assert params["state"] == auth.state and params["iss"] == op.url
    return params


def id_token_claims(rp: RelyingParty, tokens: dict[str, Any], nonce: str | None) -> dict[str, Any]:
    """The token endpoint's answer and its ID token, checked as AbstractOIDCCServerTest does."""
    assert tokens["token_type"].lower() == "bearer" and tokens["access_token"] and tokens["expires_in"] > 0
    if nonce is None:
        from joserfc import jwt

        return dict(jwt.decode(tokens["id_token"], rp.jwks()).claims)
    claims = rp.validate_id_token(tokens["id_token"], nonce, tokens["access_token"])
    assert claims["aud"] == rp.client_id or rp.client_id in claims["aud"]
    assert 0 < len(claims["sub"]) <= 255 and claims["sub"].isascii()
    return claims


@pytest.fixture
def suite(op: Provider, documents: Documents) -> Iterator[Suite]:  # noqa: F811
    username, password = f"c{uuid.uuid4().hex[:10]}", "conformance pass phrase"
    profile = op.core.accounts.create(username, password, name="赵六", given_name="六", family_name="赵",
                                      email=f"{username}@example.org", email_verified=True,
                                      phone_number="+8613900000000", phone_number_verified=True, locale="zh-CN")
    browser = Browser()
    yield Suite(op, Person(profile.id, username, password), browser, documents)
    browser.close()
