"""Back-Channel Logout from an upstream (OIDC Back-Channel Logout 1.0 §2.6): the logout token is
checked fully and single-use, and ends the local sessions that upstream's login made."""
from __future__ import annotations

import time
from urllib.parse import urljoin

import httpx
import pytest

from idp.backchannel import EVENT
from tests.federation.conftest import FAKE, city_rp, tokens, upstream_button
from tests.federation.fake_upstream import Behaviour, FakeUpstream
from tests.idp.conftest import Provider
from tests.rp import Browser

AUD = "city-at-fake"


def _post(city: Provider, token: str) -> httpx.Response:
    return httpx.post(f"{city.url}/federation/{FAKE}/backchannel-logout", data={"logout_token": token})


def _logout_token(fake: FakeUpstream, **claims: object) -> str:
    return fake.sign(**{"aud": AUD, "events": {EVENT: {}}, **claims})


def _fake_login(city: Provider, browser: Browser, subject: str, fake: FakeUpstream, sid: str | None = None) -> str:
    """A login at the city through the fake upstream; returns the city session's sid."""
    fake.behaviour = Behaviour(claims={"sub": subject, **({"sid": sid} if sid else {})})
    rp = city_rp(city)
    auth = rp.authorization()
    page = browser.follow(browser.get(auth.url), rp.redirect_uri)
    response = browser.follow(browser.get(urljoin(str(page.url), upstream_button(page.text, FAKE))), rp.redirect_uri)
    fake.behaviour.claims = {}
    return tokens(rp, auth, response)["sid"]


def test_a_logout_token_naming_the_upstream_session_ends_the_city_session(city: Provider, fake: FakeUpstream,
                                                                          browser: Browser) -> None:
    sid = _fake_login(city, browser, "bcl-subject-1", fake, sid="upstream-sid-1")
    assert city.core.sessions.alive(sid)
    response = _post(city, _logout_token(fake, sid="upstream-sid-1"))
    assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
    assert not city.core.sessions.alive(sid)


def test_a_logout_token_naming_only_the_subject_ends_all_its_sessions(city: Provider, fake: FakeUpstream) -> None:
    browsers = [Browser(), Browser()]
    try:
        sids = [_fake_login(city, b, "bcl-subject-2", fake) for b in browsers]
    finally:
        for b in browsers:
            b.close()
    assert _post(city, _logout_token(fake, sub="bcl-subject-2")).status_code == 200
    assert not any(city.core.sessions.alive(s) for s in sids)


def test_a_logout_token_is_single_use(city: Provider, fake: FakeUpstream) -> None:
    token = _logout_token(fake, sub="bcl-nobody")
    assert _post(city, token).status_code == 200
    replay = _post(city, token)
    assert (replay.status_code, replay.json()["error"]) == (400, "invalid_request")


@pytest.mark.parametrize("claims", [
    {"events": None},
    {"events": {"http://example.com/other": {}}},
    {"nonce": "n-1"},
    {"aud": "someone-else"},
    {"iss": "https://evil.example"},
    {"exp": int(time.time()) - 5},
    {"sub": None},  # neither sub nor sid
    {"jti": None},
])
def test_a_logout_token_failing_a_check_is_refused_and_ends_nothing(city: Provider, fake: FakeUpstream,
                                                                    browser: Browser, claims: dict) -> None:
    sid = _fake_login(city, browser, "bcl-subject-3", fake)
    response = _post(city, _logout_token(fake, **{"sub": "bcl-subject-3", **claims}))
    assert (response.status_code, response.json()["error"]) == (400, "invalid_request")
    assert city.core.sessions.alive(sid)


def test_a_logout_token_signed_by_another_key_is_refused(city: Provider, fake: FakeUpstream) -> None:
    impostor = FakeUpstream(fake.issuer, AUD)
    response = _post(city, impostor.sign(aud=AUD, sub="x", events={EVENT: {}}))
    assert response.status_code == 400


def test_a_logout_for_an_unknown_upstream_is_refused(city: Provider, fake: FakeUpstream) -> None:
    response = httpx.post(f"{city.url}/federation/nobody/backchannel-logout", data={"logout_token": "a.b.c"})
    assert (response.status_code, response.json()["error"]) == (400, "invalid_request")


def test_local_logout_also_ends_the_upstream_session_when_the_policy_says_so(federated, browser: Browser) -> None:
    from tests.federation.conftest import broker_login, citizen, policy
    from tests.rp import RelyingParty, callback_params, parse_form

    person = citizen(federated.province)
    app = city_rp(federated.city)
    redirect = "https://province-app.example.gov.cn/cb"
    client, secret = federated.province.core.clients.create(name="省应用", redirect_uris=[redirect], first_party=True)
    province_app = RelyingParty(federated.province.url, client.client_id, secret, redirect)
    with policy(federated, end_session=True):
        auth, response = broker_login(browser, app, person.username, person.password)
        tokens(app, auth, response)
        page = browser.get(federated.city.url + "/logout")
        form = parse_form(page.text)
        out = browser.http.post(urljoin(str(page.url), form["action"]),
                                data={"csrf_token": form["csrf_token"], "action": "logout"})
        assert out.headers["location"].startswith(federated.province.url + "/logout?")
        back = browser.follow(browser.get(out.headers["location"]), "never")  # the province ends its session
        assert back.status_code == 200 and str(back.url).startswith(federated.city.url + "/federation/logged-out")
    check = province_app.authorization(prompt="none")
    assert callback_params(browser.follow(browser.get(check.url), redirect))["error"] == "login_required"
