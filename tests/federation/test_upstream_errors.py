"""What the city refuses from an upstream, and the page a person sees instead (never a 500)."""
from __future__ import annotations

import json
import random
import time
import uuid
from typing import Iterator
from urllib.parse import urljoin

import httpx
import pytest
from sqlalchemy import select

from federation.upstream import UpstreamInputError, check_url
from idp import events
from idp.models import AuditEvent
from realname.pii import IdNumber
from realname.testdata import make_id_number
from tests.federation.conftest import city_rp, upstream_button
from tests.federation.fake_upstream import Behaviour, FakeUpstream
from tests.idp.conftest import Provider
from tests.rp import Browser

from tests.federation.conftest import FAKE as SLUG


@pytest.fixture(autouse=True)
def fresh(fake: FakeUpstream) -> Iterator[None]:
    fake.behaviour = Behaviour()
    yield
    fake.behaviour = Behaviour()  # other modules share the stand-in upstream


def _journey(city: Provider, browser: Browser) -> httpx.Response:
    rp = city_rp(city)
    auth = rp.authorization()
    page = browser.follow(browser.get(auth.url), rp.redirect_uri)
    return browser.follow(browser.get(urljoin(str(page.url), upstream_button(page.text, SLUG))), rp.redirect_uri)


def _error_code(page: httpx.Response) -> str:
    import re

    match = re.search(r"<code>([a-z_]+)</code>", page.text)
    assert match, page.text[:300]
    return match.group(1)


def test_a_valid_id_token_from_an_upstream_without_alg_in_its_keys_logs_in(city: Provider, fake: FakeUpstream,
                                                                           browser: Browser) -> None:
    response = _journey(city, browser)
    assert response.is_redirect and "code=" in response.headers["location"]


@pytest.mark.parametrize("claims, why", [
    ({"aud": "someone-else"}, "aud"),
    ({"iss": "https://evil.example"}, "iss"),
    ({"nonce": "not-the-nonce"}, "nonce"),
    ({"exp": int(time.time()) - 3600, "iat": int(time.time()) - 3700}, "exp"),
    ({"aud": ["city-at-fake", "other"]}, "azp missing with several audiences"),
    ({"azp": "other"}, "azp"),
    ({"iat": int(time.time()) - 7200}, "issued long ago"),
    ({"sub": None}, "sub"),
])
def test_an_id_token_that_fails_a_check_is_refused(city: Provider, fake: FakeUpstream, browser: Browser,
                                                   claims: dict, why: str) -> None:
    fake.behaviour.claims = claims
    page = _journey(city, browser)
    assert page.status_code == 400, why
    assert _error_code(page) == "upstream_invalid_token", why


@pytest.mark.parametrize("alg", ["none", "HS256", "RS256"])
def test_an_id_token_under_an_algorithm_not_allowed_is_refused(city: Provider, fake: FakeUpstream, browser: Browser,
                                                               alg: str) -> None:
    fake.behaviour.header_alg = alg
    page = _journey(city, browser)
    assert (page.status_code, _error_code(page)) == (400, "upstream_invalid_token")


def test_a_slow_upstream_gets_a_timeout_page(city: Provider, fake: FakeUpstream, browser: Browser) -> None:
    fake.behaviour.token_delay = 4.0  # the city waits 3 s
    page = _journey(city, browser)
    assert (page.status_code, _error_code(page)) == (502, "upstream_timeout")
    assert "超时" in page.text  # zh-CN by default


def test_a_failing_upstream_gets_an_unavailable_page_in_english_when_asked(city: Provider, fake: FakeUpstream) -> None:
    fake.behaviour.token_status = 503
    browser = Browser()
    browser.http.headers["Accept-Language"] = "en"
    try:
        page = _journey(city, browser)
    finally:
        browser.close()
    assert page.status_code in (400, 502)
    assert _error_code(page) in ("upstream_error", "upstream_unavailable")
    assert "identity provider" in page.text


def test_an_id_number_from_an_upstream_not_trusted_for_it_is_audited_and_ignored(city: Provider, fake: FakeUpstream,
                                                                                  browser: Browser) -> None:
    number = IdNumber.parse(make_id_number(random.Random()))
    fake.behaviour.claims = {"sub": f"fake-{uuid.uuid4().hex}", "id_number": number.reveal()}
    response = _journey(city, browser)
    assert response.is_redirect and "code=" in response.headers["location"]  # a new account, with no number
    assert city.core.identities.find_person(number) is None
    events.flush()
    with city.core.engine.connect() as connection:
        rows = connection.execute(select(AuditEvent.details).where(AuditEvent.event == events.UPSTREAM_LOGIN)).all()
    assert any(r[0].get("untrusted_claims") == ["id_number"] and r[0].get("upstream") == SLUG for r in rows)
    assert not any(number.reveal() in json.dumps(r[0]) for r in rows)  # audited by name, never by value


def test_a_refusal_at_the_upstream_is_shown_as_such(city: Provider, fake: FakeUpstream, browser: Browser) -> None:
    fake.behaviour.authorize_error = "access_denied"
    page = _journey(city, browser)
    assert (page.status_code, _error_code(page)) == (400, "upstream_denied")


def test_the_return_from_the_upstream_is_single_use(city: Provider, fake: FakeUpstream, browser: Browser) -> None:
    rp = city_rp(city)
    auth = rp.authorization()
    page = browser.follow(browser.get(auth.url), rp.redirect_uri)
    to_upstream = browser.get(urljoin(str(page.url), upstream_button(page.text, SLUG)))
    back = browser.get(to_upstream.headers["location"])  # the fake upstream sends the browser back
    callback = back.headers["location"]
    assert browser.get(callback).is_redirect
    replay = browser.get(callback)
    assert (replay.status_code, _error_code(replay)) == (400, "upstream_state")


def test_the_return_in_another_browser_is_refused(city: Provider, fake: FakeUpstream, browser: Browser) -> None:
    rp = city_rp(city)
    auth = rp.authorization()
    page = browser.follow(browser.get(auth.url), rp.redirect_uri)
    to_upstream = browser.get(urljoin(str(page.url), upstream_button(page.text, SLUG)))
    callback = browser.get(to_upstream.headers["location"]).headers["location"]
    other = Browser()
    try:
        page = other.get(callback)
    finally:
        other.close()
    assert (page.status_code, _error_code(page)) == (400, "upstream_state")


def test_upstream_urls_must_be_https_off_loopback() -> None:
    assert check_url("issuer", "http://127.0.0.1:9000") == "http://127.0.0.1:9000"
    assert check_url("issuer", "https://idp.fujian.gov.cn") == "https://idp.fujian.gov.cn"
    with pytest.raises(UpstreamInputError):
        check_url("issuer", "http://idp.fujian.gov.cn")


def test_an_issuer_whose_discovery_names_another_issuer_is_not_registered(city: Provider, fake: FakeUpstream) -> None:
    from federation.upstream import UpstreamError

    with pytest.raises(UpstreamError):
        city.core.federation.upstreams.add(slug="mixup", name="Mix-up", issuer=fake.issuer + "/other",
                                           client_id="x", client_secret=None)
