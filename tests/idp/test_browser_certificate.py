"""In headless Chromium: the certificate page's script talks to the demo signing agent, the enterprise
signs in with its SM2 certificate and then its RSA one, and the demo RP shows the same subject."""
from __future__ import annotations

import json

import pytest

from tests.idp.test_browser_demo import chromium  # noqa: F401  (the fixture)
from tests.idp.test_certificate_demo import demo  # noqa: F401  (the fixture)

pytestmark = pytest.mark.browser


def _sign_in(browser, url: str, algorithm: str) -> dict[str, object]:  # type: ignore[no-untyped-def]
    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    page.goto(url + "/demo")
    page.click("#login-with-yihao")
    page.click("#certificate-login")
    # selectors, not wait_for_function: the page's CSP forbids the eval a polled predicate needs
    page.locator("#cert-select option").nth(1).wait_for(state="attached")
    value = page.eval_on_selector("#cert-select", f"s => [...s.options].find(o => o.text.endsWith('{algorithm}')).value")
    page.select_option("#cert-select", value)
    page.fill("#cert-pin", "123456")
    page.click("#cert-sign")
    page.wait_for_selector("#id-token-claims, button[value=approve]")
    if page.locator("button[value=approve]").count():  # the first sign-in of this account asks for consent
        page.click("button[value=approve]")
    page.wait_for_selector("#id-token-claims")
    claims = json.loads(page.inner_text("#id-token-claims"))
    context.close()
    return dict(claims)


def test_an_enterprise_signs_in_from_the_browser_with_two_cas_certificates(chromium, demo) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    url, _agent = demo
    sm2, rsa = _sign_in(chromium, url, "sm2"), _sign_in(chromium, url, "rsa")
    assert sm2["sub"] == rsa["sub"] and sm2["acr"] == rsa["acr"] == "loa/4"


def test_a_wrong_pin_is_said_on_the_page(chromium, demo) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    url, _agent = demo
    page = chromium.new_page(locale="en-US")
    page.goto(url + "/demo")
    page.click("#login-with-yihao")
    page.click("#certificate-login")
    # selectors, not wait_for_function: the page's CSP forbids the eval a polled predicate needs
    page.locator("#cert-select option").nth(1).wait_for(state="attached")
    page.fill("#cert-pin", "000000")
    page.click("#cert-sign")
    page.wait_for_selector("#agent-status:not(:empty)")
    assert page.inner_text("#agent-status") == "The PIN is not correct."
    page.close()
