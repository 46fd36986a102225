"""Token exchange (RFC 8693) and the JWT bearer grant (RFC 7523) for partner apps, as a partner sees them."""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from federation.partners import SELF
from tests.federation.conftest import FAKE, Federated, broker_login, citizen, city_rp, tokens
from tests.federation.fake_upstream import FakeUpstream
from tests.idp.conftest import Provider
from tests.rp import Browser, RelyingParty, callback_params

EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ACCESS = "urn:ietf:params:oauth:token-type:access_token"
JWT = "urn:ietf:params:oauth:token-type:jwt"
API = "https://records.city.example.gov.cn"


@dataclass
class Partner:
    """One partner app: a client at the province (it holds provincial tokens) and one at the city."""

    at_province: RelyingParty
    client_id: str
    secret: str

    def exchange(self, city: Provider, subject_token: str, **params: str) -> httpx.Response:
        data = {"grant_type": EXCHANGE, "subject_token": subject_token, "subject_token_type": ACCESS, **params}
        return httpx.post(city.url + "/token", data=data, auth=(self.client_id, self.secret))


def make_partner(federated: Federated, **rule: Any) -> Partner:
    province, city = federated.province, federated.city
    redirect = f"https://partner-{uuid.uuid4().hex[:6]}.example.com/callback"
    client, secret = province.core.clients.create(name="合作方 Partner", redirect_uris=[redirect], first_party=True,
                                                  subject_type="public", resources=[city.url])
    at_province = RelyingParty(province.url, client.client_id, secret, redirect)
    partner, partner_secret = city.core.clients.create(name="合作方 Partner", redirect_uris=[],
                                                       grant_types=[EXCHANGE, JWT_BEARER, "client_credentials"],
                                                       scope="records")
    city.core.federation.partners.set(partner.client_id, **{
        "subject_issuers": [province.url, FAKE_ISSUER[0]], "token_types": ["access_token", "jwt"],
        "audiences": [API], "scopes": ["records"], **rule})
    assert partner_secret is not None
    return Partner(at_province, partner.client_id, partner_secret)


FAKE_ISSUER: list[str] = [""]


@pytest.fixture
def linked(federated: Federated, fake: FakeUpstream) -> tuple[Any, str]:
    """A citizen verified at the province who has logged in at the city once (so is linked there)."""
    FAKE_ISSUER[0] = fake.issuer
    person = citizen(federated.province)
    browser = Browser()
    try:
        rp = city_rp(federated.city)
        auth, response = broker_login(browser, rp, person.username, person.password)
        tokens(rp, auth, response)
    finally:
        browser.close()
    return person, federated.city.core.identities.find_person(person.id_number)


def provincial_token(partner: Partner, person: Any, audience: str | None) -> str:
    """The partner's access token at the province for the person, meant for `audience` (RFC 8707)."""
    browser = Browser()
    try:
        auth = partner.at_province.authorization(**({"resource": audience} if audience else {}))
        params = callback_params(browser.login(auth.url, person.username, person.password,
                                               stop_at=partner.at_province.redirect_uri))
        return partner.at_province.fetch_token(params["code"], auth.verifier)["access_token"]
    finally:
        browser.close()


def city_claims(city: Provider, token: str) -> dict[str, Any]:
    keys = KeySet.import_key_set(httpx.get(city.url + "/jwks").json())
    return dict(jwt.decode(token, keys, algorithms=["RS256", "ES256", "EdDSA"]).claims)


def test_a_partner_exchanges_a_provincial_token_for_a_city_token(federated: Federated, linked: tuple) -> None:
    person, account_id = linked
    partner = make_partner(federated)
    subject_token = provincial_token(partner, person, federated.city.url)
    response = partner.exchange(federated.city, subject_token, audience=API, scope="records")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["issued_token_type"] == ACCESS and body["token_type"] == "Bearer"
    claims = city_claims(federated.city, body["access_token"])
    assert (claims["iss"], claims["aud"], claims["scope"], claims["client_id"]) == (
        federated.city.url, API, "records", partner.client_id)
    assert "act" not in claims
    found = federated.city.core.issuer.read_access_token(body["access_token"])
    assert found is not None and found[1] == account_id  # the linked city account


def test_a_subject_token_is_single_use(federated: Federated, linked: tuple) -> None:
    person, _ = linked
    partner = make_partner(federated)
    subject_token = provincial_token(partner, person, federated.city.url)
    assert partner.exchange(federated.city, subject_token).status_code == 200
    replay = partner.exchange(federated.city, subject_token)
    assert (replay.status_code, replay.json()["error"]) == (400, "invalid_grant")
    assert replay.json()["error_description"] == "the subject token was already used"


def test_a_subject_token_for_another_audience_is_refused(federated: Federated, linked: tuple) -> None:
    person, _ = linked
    partner = make_partner(federated)
    subject_token = provincial_token(partner, person, None)  # aud: the province itself
    response = partner.exchange(federated.city, subject_token)
    assert (response.status_code, response.json()["error"]) == (400, "invalid_grant")
    assert response.json()["error_description"] == "the subject token: aud is not for us"


def test_a_subject_token_from_an_issuer_the_partner_is_not_trusted_for_is_refused(federated: Federated,
                                                                                 linked: tuple) -> None:
    person, _ = linked
    partner = make_partner(federated, subject_issuers=[SELF])
    response = partner.exchange(federated.city, provincial_token(partner, person, federated.city.url))
    assert (response.status_code, response.json()["error"]) == (400, "invalid_grant")
    assert response.json()["error_description"] == "the subject token's issuer is not trusted for this client"


def test_a_subject_token_from_an_unknown_issuer_is_refused(federated: Federated, linked: tuple) -> None:
    partner = make_partner(federated)
    forged = FakeUpstream("https://idp.elsewhere.example", "x").sign(aud=federated.city.url)
    response = partner.exchange(federated.city, forged, subject_token_type=JWT)
    assert (response.status_code, response.json()["error"]) == (400, "invalid_grant")


@pytest.mark.parametrize("claims, description", [
    ({"exp": -120, "iat": -400}, "the subject token: the token has expired"),  # times relative to now
    ({"exp": -5}, "the subject token has expired"),  # inside the clock-skew leeway: still expired
    ({"aud": "https://somewhere.else"}, "the subject token: aud is not for us"),
    ({"jti": None}, "the subject token has no jti, so its replay could not be detected"),
    ({"iss": "https://evil.example"}, "the subject token's issuer is not trusted for this client"),
])
def test_subject_tokens_failing_a_check_are_refused(federated: Federated, fake: FakeUpstream, linked: tuple,
                                                    claims: dict, description: str) -> None:
    partner = make_partner(federated)
    now = int(time.time())
    claims = {k: now + v if k in ("exp", "iat") else v for k, v in claims.items()}
    token = fake.sign(**{"aud": federated.city.url, **claims})
    response = partner.exchange(federated.city, token, subject_token_type=JWT)
    assert (response.status_code, response.json()) == (400, {"error": "invalid_grant", "error_description": description})


def test_a_subject_token_signed_by_another_key_is_refused(federated: Federated, fake: FakeUpstream,
                                                          linked: tuple) -> None:
    partner = make_partner(federated)
    impostor = FakeUpstream(fake.issuer, "x")  # same issuer name, its own key
    response = partner.exchange(federated.city, impostor.sign(aud=federated.city.url), subject_token_type=JWT)
    assert response.json()["error"] == "invalid_grant"


def test_the_rule_bounds_audience_scope_and_token_type(federated: Federated, linked: tuple) -> None:
    person, _ = linked
    partner = make_partner(federated, token_types=["jwt"])
    token = provincial_token(partner, person, federated.city.url)
    assert partner.exchange(federated.city, token).json()["error"] == "invalid_request"  # access_token not allowed
    partner = make_partner(federated)
    assert partner.exchange(federated.city, token, audience="https://other.api").json()["error"] == "invalid_target"
    assert partner.exchange(federated.city, token, scope="openid admin").json()["error"] == "invalid_scope"


def test_a_client_without_a_partner_rule_cannot_exchange(federated: Federated, linked: tuple) -> None:
    person, _ = linked
    partner = make_partner(federated)
    client, secret = federated.city.core.clients.create(name="No rule", redirect_uris=[], grant_types=[EXCHANGE])
    stranger = Partner(partner.at_province, client.client_id, secret or "")
    response = stranger.exchange(federated.city, provincial_token(partner, person, federated.city.url))
    assert (response.status_code, response.json()["error"]) == (400, "unauthorized_client")


def test_an_actor_token_puts_who_acts_in_the_act_claim(federated: Federated, linked: tuple) -> None:
    person, _ = linked
    partner = make_partner(federated, actor_issuers=[SELF])
    own = httpx.post(federated.city.url + "/token", data={"grant_type": "client_credentials"},
                     auth=(partner.client_id, partner.secret)).json()["access_token"]
    response = partner.exchange(federated.city, provincial_token(partner, person, federated.city.url),
                                actor_token=own, actor_token_type=ACCESS)
    assert response.status_code == 200, response.text
    assert city_claims(federated.city, response.json()["access_token"])["act"] == {
        "sub": partner.client_id, "iss": federated.city.url}


def test_an_actor_token_needs_a_rule_that_allows_delegation(federated: Federated, linked: tuple) -> None:
    person, _ = linked
    partner = make_partner(federated)
    response = partner.exchange(federated.city, provincial_token(partner, person, federated.city.url),
                                actor_token="x.y.z", actor_token_type=ACCESS)
    assert response.json()["error"] == "invalid_request"


def test_a_jwt_bearer_assertion_from_a_trusted_issuer_gets_a_token(federated: Federated, fake: FakeUpstream,
                                                                   linked: tuple) -> None:
    partner = make_partner(federated)
    browser = Browser()  # the fake upstream's person logs in at the city once, and so is linked
    try:
        rp = city_rp(federated.city)
        auth = rp.authorization()
        from urllib.parse import urljoin

        from tests.federation.conftest import upstream_button
        page = browser.follow(browser.get(auth.url), rp.redirect_uri)
        browser.follow(browser.get(urljoin(str(page.url), upstream_button(page.text, FAKE))), rp.redirect_uri)
    finally:
        browser.close()
    assertion = fake.sign(aud=federated.city.url + "/token")
    data = {"grant_type": JWT_BEARER, "assertion": assertion, "scope": "records"}
    response = httpx.post(federated.city.url + "/token", data=data, auth=(partner.client_id, partner.secret))
    assert response.status_code == 200, response.text
    assert city_claims(federated.city, response.json()["access_token"])["aud"] == API
    replay = httpx.post(federated.city.url + "/token", data=data, auth=(partner.client_id, partner.secret))
    assert replay.json()["error"] == "invalid_grant"
