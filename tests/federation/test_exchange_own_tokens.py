"""Token exchange (RFC 8693) with a subject token this provider issued itself: an access token or an ID
token of the city, issued to the partner or to a client its rule names, checked as an upstream's is."""
from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from federation.partners import SELF
from idp import jose
from tests.federation.conftest import Citizen, citizen, cli_env
from tests.federation.test_token_exchange import ACCESS, API, EXCHANGE, JWT, city_claims
from tests.idp.conftest import Provider
from tests.live import yihao
from tests.rp import Browser, RelyingParty, callback_params, revoke, tokens_after_login

ID_TOKEN = "urn:ietf:params:oauth:token-type:id_token"


@dataclass
class Apps:
    """A front-end app and the partner (its back end) at the city, each with its own pairwise sector."""

    front: RelyingParty
    partner: RelyingParty
    person: Citizen

    def exchange(self, city: Provider, subject_token: str, token_type: str = ACCESS, **params: str) -> httpx.Response:
        data = {"grant_type": EXCHANGE, "subject_token": subject_token, "subject_token_type": token_type, **params}
        return httpx.post(city.url + "/token", data=data, auth=(self.partner.client_id, self.partner.client_secret))


def _app(city: Provider, name: str, **metadata: Any) -> RelyingParty:
    redirect = f"https://{name}-{uuid.uuid4().hex[:8]}.example.com/callback"
    client, secret = city.core.clients.create(name=name, redirect_uris=[redirect], first_party=True, **metadata)
    return RelyingParty(city.url, client.client_id, secret, redirect)


def make_apps(city: Provider, **rule: Any) -> Apps:
    front = _app(city, "front", resources=["https://other.api.example.com"])
    partner = _app(city, "partner", grant_types=["authorization_code", "refresh_token", EXCHANGE, "client_credentials"],
                   scope="openid records")
    city.core.federation.partners.set(partner.client_id, **{
        "subject_issuers": [SELF], "token_types": ["access_token", "id_token", "jwt"], "audiences": [API],
        "scopes": ["records"], "self_clients": [front.client_id], **rule})
    return Apps(front, partner, citizen(city))


def login(rp: RelyingParty, person: Citizen) -> dict[str, Any]:
    token, _nonce = tokens_after_login(rp, person.username, person.password)
    return token


def authorized(rp: RelyingParty, person: Citizen, **params: str) -> tuple[Any, dict[str, str]]:
    """The authorization request and the code response, the person signing in in a fresh browser."""
    auth = rp.authorization(**params)
    browser = Browser()
    try:
        return auth, callback_params(browser.login(auth.url, person.username, person.password, stop_at=rp.redirect_uri))
    finally:
        browser.close()


def refused(response: httpx.Response) -> tuple[int, str, str]:
    body = response.json()
    return response.status_code, body["error"], body.get("error_description", "")


def test_a_partner_exchanges_its_own_access_token(city: Provider) -> None:
    apps = make_apps(city)
    response = apps.exchange(city, login(apps.partner, apps.person)["access_token"], scope="records")
    assert response.status_code == 200, response.text
    issued = response.json()["access_token"]
    assert "refresh_token" not in response.json()  # RFC 8693 §2.2.1: optional, and not given to partners
    claims = city_claims(city, issued)
    assert (claims["aud"], claims["client_id"], claims["scope"]) == (API, apps.partner.client_id, "records")
    assert city.core.issuer.read_access_token(issued)[1] == apps.person.id


def test_an_id_token_issued_to_another_client_is_resolved_to_the_person_behind_its_pairwise_subject(
        city: Provider) -> None:
    apps = make_apps(city)
    token, nonce = tokens_after_login(apps.front, apps.person.username, apps.person.password)
    id_token = token["id_token"]
    front_sub = apps.front.validate_id_token(id_token, nonce)["sub"]  # as the front app sees the person
    response = apps.exchange(city, id_token, ID_TOKEN)
    assert response.status_code == 200, response.text
    issued = response.json()["access_token"]
    partner_client = city.core.clients.get(apps.partner.client_id)
    sub = city_claims(city, issued)["sub"]
    assert sub == city.core.issuer.subject(partner_client, apps.person.id) != front_sub  # the partner's, not the front's
    assert city.core.issuer.read_access_token(issued)[1] == apps.person.id


def test_a_token_for_an_audience_that_is_a_client_carries_that_clients_subject(city: Provider) -> None:
    apps = make_apps(city)
    other = _app(city, "records-app")
    city.core.federation.partners.set(apps.partner.client_id, subject_issuers=[SELF], token_types=["access_token"],
                                      audiences=[other.client_id])
    response = apps.exchange(city, login(apps.partner, apps.person)["access_token"], audience=other.client_id)
    assert response.status_code == 200, response.text
    other_client = city.core.clients.get(other.client_id)
    assert city_claims(city, response.json()["access_token"])["sub"] == city.core.issuer.subject(other_client,
                                                                                                   apps.person.id)


def test_a_token_issued_to_a_client_the_rule_does_not_name_is_refused(city: Provider) -> None:
    apps = make_apps(city, self_clients=[])
    assert refused(apps.exchange(city, login(apps.front, apps.person)["id_token"], ID_TOKEN)) == (
        400, "invalid_grant", "the subject token was issued to a client whose tokens this client may not present")


def test_this_provider_must_be_an_issuer_the_rule_trusts(city: Provider) -> None:
    apps = make_apps(city, subject_issuers=["https://province.example.gov.cn"])
    assert refused(apps.exchange(city, login(apps.partner, apps.person)["access_token"])) == (
        400, "invalid_grant", "the subject token's issuer is not trusted for this client")


def test_a_revoked_access_token_is_refused(city: Provider) -> None:
    apps = make_apps(city)
    token = login(apps.partner, apps.person)["access_token"]
    assert revoke(apps.partner, token, "access_token").status_code == 200
    assert refused(apps.exchange(city, token)) == (
        400, "invalid_grant", "the subject token is not a valid, unexpired, unrevoked access token of this provider")


def test_an_id_token_whose_grant_was_revoked_is_refused(city: Provider) -> None:
    apps = make_apps(city)
    browser_auth, params = authorized(apps.front, apps.person)
    id_token = apps.front.fetch_token(params["code"], browser_auth.verifier)["id_token"]
    assert apps.front.exchange(params["code"], browser_auth.verifier).status_code == 400  # code reuse revokes the grant
    assert refused(apps.exchange(city, id_token, ID_TOKEN)) == (
        400, "invalid_grant", "the subject token is not a valid, unexpired ID token of this provider")


def _resigned(city: Provider, token: str, typ: str, **changes: Any) -> str:
    """`token` with some claims changed, signed again with the city's own key (as if time had passed)."""
    claims = jose.verify(token, city.core.keys.public_key, ("RS256", "ES256", "EdDSA", "PS256"), typ=typ)
    return jose.sign({**claims, **changes}, city.core.keys.signing_key(jose.header(token)["alg"]), typ=typ)


@pytest.mark.parametrize("kind", ["access_token", "id_token"])
def test_an_expired_token_of_this_provider_is_refused(city: Provider, kind: str) -> None:
    apps = make_apps(city)
    token = login(apps.partner if kind == "access_token" else apps.front, apps.person)[kind]
    now = int(time.time())
    expired = _resigned(city, token, "at+jwt" if kind == "access_token" else "JWT", exp=now - 5, iat=now - 400)
    response = apps.exchange(city, expired, ACCESS if kind == "access_token" else ID_TOKEN)
    assert refused(response)[:2] == (400, "invalid_grant")
    assert "unexpired" in refused(response)[2]
    assert apps.exchange(city, _resigned(city, token, "at+jwt" if kind == "access_token" else "JWT"),
                         ACCESS if kind == "access_token" else ID_TOKEN).status_code == 200  # the same, unexpired


def test_an_access_token_for_another_audience_is_refused(city: Provider) -> None:
    apps = make_apps(city)
    browser_auth, params = authorized(apps.front, apps.person, resource="https://other.api.example.com")
    token = apps.front.fetch_token(params["code"], browser_auth.verifier)["access_token"]
    assert refused(apps.exchange(city, token)) == (
        400, "invalid_grant", "the subject token's audience is neither this provider nor this client")


def test_a_subject_token_of_this_provider_is_single_use(city: Provider) -> None:
    apps = make_apps(city)
    token = login(apps.partner, apps.person)["access_token"]
    assert apps.exchange(city, token).status_code == 200
    assert refused(apps.exchange(city, token)) == (400, "invalid_grant", "the subject token was already used")


def test_a_token_presented_as_another_type_is_refused(city: Provider) -> None:
    apps = make_apps(city)
    tokens = login(apps.front, apps.person)
    assert refused(apps.exchange(city, tokens["access_token"], ID_TOKEN))[:2] == (400, "invalid_grant")
    assert refused(apps.exchange(city, tokens["id_token"], ACCESS))[:2] == (400, "invalid_grant")
    assert refused(apps.exchange(city, tokens["id_token"], JWT)) == (
        400, "invalid_request", "a subject token issued by this provider is an access token or an ID token")


def test_a_clients_own_token_names_no_person(city: Provider) -> None:
    apps = make_apps(city)
    own = httpx.post(city.url + "/token", data={"grant_type": "client_credentials"},
                     auth=(apps.partner.client_id, apps.partner.client_secret)).json()["access_token"]
    assert refused(apps.exchange(city, own)) == (
        400, "invalid_grant", "the subject token is a client's own token, not a person's")


def test_the_command_line_names_the_clients_whose_tokens_a_partner_may_present(city: Provider) -> None:
    apps = make_apps(city, self_clients=[])
    env = cli_env(city)
    base = ("partners", "set", "--subject-issuer", SELF, "--token-type", "id_token", "--audience", API)
    end = ("--", apps.partner.client_id)  # a client id may begin with "-"
    assert yihao(env, *base, "--self-client=no-such-client", *end).stderr.strip() == "yihao: no client no-such-client"
    done = yihao(env, *base, f"--self-client={apps.front.client_id}", *end)
    assert done.returncode == 0 and json.loads(done.stdout)["self_clients"] == [apps.front.client_id]
    assert apps.exchange(city, login(apps.front, apps.person)["id_token"], ID_TOKEN).status_code == 200
