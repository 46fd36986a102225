"""The device authorization grant (RFC 8628): a kiosk shows a code, a person signs in on a phone."""
from __future__ import annotations

import json
import re
import time
import random
import warnings
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urljoin

import httpx
import pytest
from sqlalchemy import text

from idp import events
from idp.clients import DEVICE_CODE
from idp.device import USER_CODE_ALPHABET, normalize_user_code
from tests.idp.conftest import Person, Provider, WorkerFactory
from tests.rp import Browser, DPoPKey, callback_params, parse_form

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from authlib.integrations.httpx_client import OAuth2Client
from authlib.integrations.base_client.errors import OAuthError


@dataclass
class Kiosk:
    """A 24-hour terminal registered as a public client with the device grant."""

    client_id: str
    url: str  # the worker it talks to

    def authorize(self, scope: str = "openid profile") -> dict[str, Any]:
        response = httpx.post(self.url + "/device_authorization", data={"client_id": self.client_id, "scope": scope})
        assert response.status_code == 200, response.text
        return response.json()

    def poll(self, device_code: str, at: str | None = None) -> dict[str, Any]:
        """One poll through authlib's client, which raises OAuthError unless tokens come back."""
        with OAuth2Client(self.client_id, token_endpoint_auth_method="none") as client:
            return dict(client.fetch_token((at or self.url) + "/token", grant_type=DEVICE_CODE,
                                           device_code=device_code))


def refusal(kiosk: Kiosk, device_code: str, at: str | None = None) -> tuple[str, str]:
    with pytest.raises(OAuthError) as raised:
        kiosk.poll(device_code, at)
    return raised.value.error, str(raised.value.description)


@pytest.fixture
def fast(another_worker: WorkerFactory) -> str:
    """A worker of the deployment that lets a device poll every second (the tests need not wait 5)."""
    return another_worker(device_poll_interval=1)


def make_kiosk(provider: Provider, url: str, **metadata: Any) -> Kiosk:
    client, _ = provider.core.clients.create(name="社区自助终端 Kiosk", redirect_uris=[], public=True,
                                             grant_types=[DEVICE_CODE, "refresh_token"], **metadata)
    return Kiosk(client.client_id, url)


@pytest.fixture
def kiosk(provider: Provider, fast: str) -> Kiosk:
    return make_kiosk(provider, fast)


def approve_on_phone(browser: Browser, verification_uri_complete: str, person: Person,
                     action: str = "approve") -> httpx.Response:
    """The person opens the link (a QR code on the kiosk), confirms the code, signs in and answers."""
    page = browser.get(verification_uri_complete)
    form = parse_form(page.text)
    typed = re.search(r'name="user_code" value="([^"]*)"', page.text)
    assert typed is not None
    response = browser.http.post(urljoin(str(page.url), form["action"]),
                                 data={"csrf_token": form["csrf_token"], "user_code": typed.group(1)})
    page = browser.follow(response, stop_at="never")
    form = parse_form(page.text)
    if form.get("action", "").endswith("/login"):
        page = browser.follow(browser.http.post(urljoin(str(page.url), form["action"]), data={
            "csrf_token": form["csrf_token"], "username": person.username, "password": person.password}), "never")
    return browser.consent(page, action, stop_at="never")


def wait(seconds: float = 1.05) -> None:
    time.sleep(seconds)  # the kiosk keeps to the interval it was given


def test_a_kiosk_signs_a_citizen_in_by_device_code(provider: Provider, kiosk: Kiosk, person: Person,
                                                   browser: Browser) -> None:
    codes = kiosk.authorize()
    assert re.fullmatch(r"[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}", codes["user_code"])
    assert codes["verification_uri"] == provider.url + "/device"
    assert codes["verification_uri_complete"] == f"{provider.url}/device?user_code={codes['user_code']}"
    assert codes["interval"] == 1 and codes["expires_in"] == provider.core.settings.device_code_ttl
    assert refusal(kiosk, codes["device_code"])[0] == "authorization_pending"
    done = approve_on_phone(browser, codes["verification_uri_complete"], person)
    assert done.status_code == 200 and "<h1>设备已登录</h1>" in done.text  # zh-CN, the default
    wait()
    tokens = kiosk.poll(codes["device_code"])
    assert tokens["token_type"] == "Bearer" and tokens["scope"] == "openid profile"
    info = httpx.get(provider.url + "/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert info.status_code == 200 and info.json()["name"] == "李四"
    wait()
    assert refusal(kiosk, codes["device_code"]) == ("invalid_grant", "device_code is invalid, expired or already used")


def test_the_consent_page_shows_the_code_the_person_typed(provider: Provider, kiosk: Kiosk, person: Person,
                                                          browser: Browser) -> None:
    codes = kiosk.authorize()
    page = browser.get(provider.url + "/device?lang=en")
    form = parse_form(page.text)
    typed = codes["user_code"].lower().replace("-", " ")  # case and separators do not matter
    response = browser.http.post(provider.url + "/device", data={"csrf_token": form["csrf_token"], "user_code": typed})
    login = browser.follow(response, "never")
    form = parse_form(login.text)
    consent = browser.follow(browser.http.post(urljoin(str(login.url), form["action"]), data={
        "csrf_token": form["csrf_token"], "username": person.username, "password": person.password}), "never")
    assert f"<strong>{codes['user_code']}</strong>" in consent.text
    assert parse_form(consent.text)["action"].endswith("/consent")


def test_a_person_signed_in_on_the_phone_goes_straight_to_consent(provider: Provider, kiosk: Kiosk, person: Person,
                                                                   browser: Browser) -> None:
    approve_on_phone(browser, kiosk.authorize()["verification_uri_complete"], person)  # signs in
    codes = kiosk.authorize()
    page = browser.get(codes["verification_uri_complete"])
    form = parse_form(page.text)
    consent = browser.follow(browser.http.post(urljoin(str(page.url), form["action"]), data={
        "csrf_token": form["csrf_token"], "user_code": codes["user_code"]}), "never")
    assert parse_form(consent.text)["action"].endswith("/consent")  # asked again: consent is never skipped
    assert f"<strong>{codes['user_code']}</strong>" in consent.text
    browser.consent(consent, "approve", stop_at="never")
    wait()
    assert kiosk.poll(codes["device_code"])["token_type"] == "Bearer"


def test_a_disabled_persons_session_cannot_approve_a_device(provider: Provider, kiosk: Kiosk, person: Person,
                                                            browser: Browser) -> None:
    from tests.idp.test_disabled_account import set_status

    approve_on_phone(browser, kiosk.authorize()["verification_uri_complete"], person)  # signs in
    set_status(provider, person, "disabled")
    codes = kiosk.authorize()
    page = browser.get(codes["verification_uri_complete"])
    form = parse_form(page.text)
    shown = browser.follow(browser.http.post(urljoin(str(page.url), form["action"]), data={
        "csrf_token": form["csrf_token"], "user_code": codes["user_code"]}), "never")
    assert parse_form(shown.text)["action"].endswith("/login")  # as if signed out: no consent to press
    set_status(provider, person, "active")


def test_an_account_disabled_while_the_device_consent_is_open_admits_no_device(provider: Provider, kiosk: Kiosk,
                                                                                person: Person, browser: Browser) -> None:
    from tests.idp.test_disabled_account import set_status

    codes = kiosk.authorize()
    page = browser.get(codes["verification_uri_complete"])
    form = parse_form(page.text)
    typed = re.search(r'name="user_code" value="([^"]*)"', page.text)
    assert typed is not None
    page = browser.follow(browser.http.post(urljoin(str(page.url), form["action"]), data={
        "csrf_token": form["csrf_token"], "user_code": typed.group(1)}), "never")
    form = parse_form(page.text)
    consent = browser.follow(browser.http.post(urljoin(str(page.url), form["action"]), data={
        "csrf_token": form["csrf_token"], "username": person.username, "password": person.password}), "never")
    set_status(provider, person, "disabled")  # before the person presses approve
    try:
        answered = browser.consent(consent, "approve", stop_at="never")
        assert answered.status_code == 403 and "该账号无法登录" in answered.text
        wait()
        assert refusal(kiosk, codes["device_code"])[0] == "access_denied"
        assert not provider.core.consents.covers(person.id, kiosk.client_id, "openid")
        events.flush()
        with provider.core.engine.connect() as conn:
            denied = conn.execute(text("SELECT details FROM audit_event WHERE event = 'device.denied' "
                                       "AND client_id = :c"), {"c": kiosk.client_id}).scalars().all()
        assert [json.loads(d) if isinstance(d, str) else d for d in denied] == [{"reason": "account_inactive"}]
    finally:
        set_status(provider, person, "active")


def test_a_device_approved_before_the_account_was_disabled_gets_no_tokens(provider: Provider, kiosk: Kiosk,
                                                                         person: Person, browser: Browser) -> None:
    from tests.idp.test_disabled_account import set_status

    codes = kiosk.authorize()
    approve_on_phone(browser, codes["verification_uri_complete"], person)
    set_status(provider, person, "disabled")  # before the kiosk's next poll
    try:
        wait()
        assert refusal(kiosk, codes["device_code"]) == ("invalid_grant", "the end-user's account is not active")
    finally:
        set_status(provider, person, "active")


def test_a_user_code_is_answered_once(provider: Provider, kiosk: Kiosk, person: Person, browser: Browser) -> None:
    codes = kiosk.authorize()
    approve_on_phone(browser, codes["verification_uri_complete"], person)
    other = Browser()
    try:
        page = other.get(codes["verification_uri_complete"] + "&lang=en")
        form = parse_form(page.text)
        again = other.http.post(urljoin(str(page.url), form["action"]),
                                data={"csrf_token": form["csrf_token"], "user_code": codes["user_code"]})
        assert again.status_code == 400 and "This code is not valid or has expired" in again.text
    finally:
        other.close()


def test_a_person_who_denies_leaves_the_kiosk_with_access_denied(provider: Provider, kiosk: Kiosk, person: Person,
                                                                  browser: Browser) -> None:
    codes = kiosk.authorize()
    done = approve_on_phone(browser, codes["verification_uri_complete"], person, action="deny")
    assert done.status_code == 200 and "<h1>设备未登录</h1>" in done.text
    assert refusal(kiosk, codes["device_code"]) == ("access_denied", "the end-user denied the authorization request")
    events.flush()
    with provider.core.engine.connect() as conn:
        denied = conn.execute(text("SELECT subject FROM audit_event WHERE event = 'device.denied' AND client_id = :c"),
                              {"c": kiosk.client_id}).scalars().all()
    assert denied == [person.id]


def test_polling_too_fast_is_slow_down_on_every_worker(provider: Provider, another_worker: WorkerFactory) -> None:
    kiosk = make_kiosk(provider, another_worker(device_poll_interval=3))
    codes = kiosk.authorize()
    assert codes["interval"] == 3
    assert refusal(kiosk, codes["device_code"])[0] == "authorization_pending"
    # the second poll comes at once, to another worker: the interval is the device code's, not the worker's
    assert refusal(kiosk, codes["device_code"], at=provider.url) == ("slow_down", "poll no more than every 8 seconds")
    wait(3.1)
    assert refusal(kiosk, codes["device_code"]) == ("slow_down", "poll no more than every 13 seconds")


def test_an_expired_device_code_is_expired_token(provider: Provider, another_worker: WorkerFactory,
                                                 person: Person, browser: Browser) -> None:
    kiosk = make_kiosk(provider, another_worker(device_code_ttl=1, device_poll_interval=1))
    codes = kiosk.authorize()
    wait(1.2)
    assert refusal(kiosk, codes["device_code"]) == (
        "expired_token", "the device_code has expired; start a new device authorization")
    page = browser.get(codes["verification_uri_complete"] + "&lang=en")
    form = parse_form(page.text)
    entered = browser.http.post(urljoin(str(page.url), form["action"]),  # the form keeps the language
                                data={"csrf_token": form["csrf_token"], "user_code": codes["user_code"]})
    assert entered.status_code == 400 and "This code is not valid or has expired" in entered.text


def test_another_clients_device_code_is_invalid_grant(provider: Provider, kiosk: Kiosk, fast: str) -> None:
    codes = kiosk.authorize()
    other = make_kiosk(provider, fast)
    assert refusal(other, codes["device_code"]) == ("invalid_grant", "device_code is invalid, expired or already used")


def test_a_dpop_kiosk_gets_bound_tokens(provider: Provider, kiosk: Kiosk, person: Person, browser: Browser) -> None:
    codes = kiosk.authorize()
    approve_on_phone(browser, codes["verification_uri_complete"], person)
    key = DPoPKey()
    response = key.post(kiosk.url + "/token", {"grant_type": DEVICE_CODE, "device_code": codes["device_code"],
                                               "client_id": kiosk.client_id}, htu=provider.url + "/token")
    assert response.status_code == 200 and response.json()["token_type"] == "DPoP"
    assert key.get(provider.url + "/userinfo", response.json()["access_token"]).status_code == 200


def test_only_clients_with_the_device_grant_may_ask_for_codes(provider: Provider) -> None:
    client, _ = provider.core.clients.create(name="Web", redirect_uris=["https://web.example.gov.cn/cb"], public=True)
    response = httpx.post(provider.url + "/device_authorization", data={"client_id": client.client_id})
    assert response.status_code == 400
    assert response.json() == {"error": "unauthorized_client",
                               "error_description": "the client is not allowed the device_code grant"}


def test_a_client_with_only_the_device_grant_gets_no_code_at_authorize(provider: Provider, browser: Browser) -> None:
    redirect = "https://kiosk.example.gov.cn/cb"  # registered, yet the client may not use the code grant
    client, _ = provider.core.clients.create(name="Kiosk", redirect_uris=[redirect], public=True,
                                             grant_types=[DEVICE_CODE])
    query = urlencode({"response_type": "code", "client_id": client.client_id, "redirect_uri": redirect,
                       "scope": "openid", "code_challenge": "a" * 43, "code_challenge_method": "S256"})
    response = browser.get(provider.url + "/authorize?" + query)
    assert response.status_code in (302, 303) and response.headers["location"].startswith(redirect)
    assert callback_params(response)["error"] == "unauthorized_client"


def test_unknown_scopes_are_refused_at_the_device_endpoint(kiosk: Kiosk) -> None:
    response = httpx.post(kiosk.url + "/device_authorization", data={"client_id": kiosk.client_id,
                                                                      "scope": "openid payroll.admin"})
    assert response.status_code == 400 and response.json()["error"] == "invalid_scope"


def test_the_code_page_needs_its_csrf_token(provider: Provider, browser: Browser) -> None:
    browser.get(provider.url + "/device")  # the browser cookie
    response = browser.http.post(provider.url + "/device?lang=en", data={"user_code": "BCDF-GHJK"})
    assert response.status_code == 403 and "This page has expired" in response.text


def test_guessing_user_codes_locks_the_address(provider: Provider, kiosk: Kiosk,
                                               another_worker: WorkerFactory) -> None:
    worker = another_worker(throttle_address_failures=3)
    # a guesser of its own: another loopback address, so its count is nobody else's
    address = f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(2, 254)}"
    guesser = Browser()
    guesser.http = httpx.Client(transport=httpx.HTTPTransport(local_address=address), follow_redirects=False)
    try:
        token = parse_form(guesser.get(worker + "/device").text)["csrf_token"]

        def guess(code: str) -> httpx.Response:
            return guesser.http.post(worker + "/device?lang=en", data={"csrf_token": token, "user_code": code})

        assert [guess("BCDF-BCDF").status_code for _ in range(3)] == [400, 400, 429]  # the third starts the lock
        blocked = guess(kiosk.authorize()["user_code"])  # even the right code, while the address is locked
        assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) > 0
        assert "Too many wrong codes from this network" in blocked.text
    finally:
        guesser.close()


def test_the_code_page_speaks_chinese_by_default(provider: Provider, browser: Browser) -> None:
    page = browser.get(provider.url + "/device")
    assert "请输入自助终端或设备屏幕上显示的代码" in page.text


def test_user_codes_are_read_leniently_and_only_from_the_alphabet() -> None:
    assert normalize_user_code("bcdf ghjk") == "BCDF-GHJK"
    assert normalize_user_code("BCDF--GHJK") == "BCDF-GHJK"
    assert normalize_user_code("BCDF-GHJA") is None  # no vowels
    assert normalize_user_code("BCDF-GHJ") is None
    assert len(USER_CODE_ALPHABET) == 20 and not set(USER_CODE_ALPHABET) & set("AEIOUY0123456789")


def test_discovery_advertises_the_device_endpoint_and_grant(provider: Provider) -> None:
    metadata = httpx.get(provider.url + "/.well-known/openid-configuration").json()
    assert metadata["device_authorization_endpoint"] == provider.url + "/device_authorization"
    assert DEVICE_CODE in metadata["grant_types_supported"]

