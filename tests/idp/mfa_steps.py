"""What a person does with second factors, through the pages: enrol on the account security page,
answer the second-factor page in a login."""
from __future__ import annotations

import re
import time
from urllib.parse import urljoin

import httpx
import pyotp

from tests.authenticator import SoftAuthenticator, options_of
from tests.idp.conftest import Person, Provider
from tests.rp import Browser, parse_form

NOWHERE = "nowhere:"  # a stop_at no redirect matches: follow to the page


def security_page(provider: Provider, browser: Browser, person: Person) -> httpx.Response:
    """Open the account security page, signing in with the password if asked."""
    page = browser.follow(browser.get(provider.url + "/account/security"), NOWHERE)
    if parse_form(page.text).get("action", "").endswith("/login"):
        page = browser.login(provider.url + "/account/security", person.username, person.password,
                             stop_at=NOWHERE, consent=None)
    return page


def account_post(provider: Provider, browser: Browser, page: httpx.Response, action: str,
                 **fields: str) -> httpx.Response:
    token = parse_form(page.text)["csrf_token"]
    response = browser.http.post(provider.url + "/account/security", data={"csrf_token": token, "action": action,
                                                                          **fields})
    return browser.follow(response, NOWHERE)


def step_time() -> float:
    """A moment at least 8 s before the current TOTP step ends, so codes for steps −1, 0, +1 stay valid."""
    now = time.time()
    if now % 30 > 22:
        time.sleep(30 - now % 30 + 0.1)
        now = time.time()
    return now


def enrol_totp(provider: Provider, browser: Browser, person: Person, at: float) -> tuple[str, list[str]]:
    """Set up TOTP on the account page, confirming with the code of the step before `at`;
    returns the secret and the recovery codes shown."""
    page = account_post(provider, browser, security_page(provider, browser, person), "totp_begin")
    secret = re.search(r'<code id="totp-secret">([A-Z2-7]+)</code>', page.text)
    assert secret, "the enrolment page shows the secret"
    assert "<svg" in page.text  # the QR code, inline
    confirmed = account_post(provider, browser, page, "totp_confirm", code=pyotp.TOTP(secret.group(1)).at(at - 30))
    assert confirmed.status_code == 200
    codes = re.findall(r"<li><code>([a-z0-9-]+)</code></li>", confirmed.text)
    return secret.group(1), codes


def enrol_passkey(provider: Provider, browser: Browser, person: Person, authenticator: SoftAuthenticator,
                  name: str = "phone") -> httpx.Response:
    page = account_post(provider, browser, security_page(provider, browser, person), "passkey_begin")
    ceremony = parse_form(page.text)["ceremony"]
    credential = authenticator.create(options_of(page.text))
    return account_post(provider, browser, page, "passkey_register", ceremony=ceremony, credential=credential,
                        name=name)


def answer(browser: Browser, page: httpx.Response, stop_at: str, *, at: str | None = None,
           **fields: str) -> httpx.Response:
    """Submit the second-factor page (method=otp|recovery_code|webauthn …), perhaps to another worker."""
    form = parse_form(page.text)
    assert form.get("action", "").endswith("/mfa"), f"expected the second-factor page, got {page.status_code}"
    response = browser.http.post(urljoin(at or str(page.url), form["action"]),
                                 data={"csrf_token": form["csrf_token"], **fields})
    return browser.follow(response, stop_at)


def passkey_answer(browser: Browser, page: httpx.Response, authenticator: SoftAuthenticator,
                   stop_at: str) -> httpx.Response:
    form = parse_form(page.text)
    credential = authenticator.get(options_of(page.text))
    return answer(browser, page, stop_at, method="webauthn", ceremony=form["ceremony"], credential=credential)
