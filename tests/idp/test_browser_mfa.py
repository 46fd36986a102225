"""The demo citizen, in headless Chromium, sets up a passkey (Chrome's virtual authenticator runs
the page's WebAuthn script) and an authenticator app, then a client asking for loa/3 gets the
second factor. WebAuthn refuses an IP address as relying-party id, so this demo runs on localhost."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

import pyotp
import pytest

from tests.idp.mfa_steps import step_time
from tests.idp.test_browser_demo import chromium  # noqa: F401 (fixture)
from tests.live import ProcessServer, free_port

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    var = tmp_path_factory.mktemp("demo-mfa")
    env = {"YIHAO_DEMO": "true", "YIHAO_VAR_DIR": str(var), "YIHAO_DATABASE_URL": f"sqlite:///{var}/yihao.db",
           "YIHAO_LOG_LEVEL": "WARNING", "YIHAO_REDIS_URL": "", "YIHAO_MASTER_KEY": ""}
    port = free_port()
    with ProcessServer(env, port, Path(var) / "serve.log", issuer=f"http://localhost:{port}") as server:
        yield f"http://localhost:{port}"


def _virtual_authenticator(page) -> None:  # type: ignore[no-untyped-def]
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True, "hasUserVerification": True,
        "isUserVerified": True, "automaticPresenceSimulation": True}})


def test_the_demo_citizen_enrols_a_passkey_and_totp_and_loa3_asks_for_the_second_factor(
        chromium, demo: str) -> None:  # type: ignore[no-untyped-def]
    context = chromium.new_context(locale="en-US")
    page = context.new_page()
    _virtual_authenticator(page)
    page.goto(demo + "/account/security")
    page.fill("input[name=username]", "citizen")
    page.fill("input[name=password]", "yihao-demo-2026")
    page.click("button[type=submit]")
    page.click("button[value=passkey_begin]")
    page.fill("input[name=name]", "laptop")
    page.click("#passkey-form button[type=submit]")  # webauthn.js: navigator.credentials.create()
    page.wait_for_selector("text=The passkey has been added.")
    assert "laptop" in page.inner_text("ul.passkeys")

    page.click("button[value=totp_begin]")  # a factor exists now: the passkey first (credentials.get())
    page.click("#passkey-form button[type=submit]")
    page.wait_for_selector("button[value=totp_begin]")
    page.click("button[value=totp_begin]")
    secret = page.inner_text("#totp-secret")
    assert page.locator(".qr svg").count() == 1
    now = step_time()
    page.fill("input[name=code]", pyotp.TOTP(secret).at(now))
    page.click("button[value=totp_confirm]")
    assert len(re.findall(r"[a-z0-9]{5}-[a-z0-9]{5}", page.inner_text("#recovery-codes"))) == 10
    context.close()

    other = chromium.new_context(locale="en-US")  # another browser: no session
    page = other.new_page()
    page.goto(demo + "/demo")
    page.click("#login-loa3")
    page.fill("input[name=username]", "citizen")
    page.fill("input[name=password]", "yihao-demo-2026")
    page.click("button[type=submit]")
    page.fill("input[name=code]", pyotp.TOTP(secret).at(now + 30))  # the second factor is asked for
    page.click("form:has(input[value=otp]) button[type=submit]")
    page.click("button[value=approve]")
    claims = page.inner_text("#id-token-claims")
    assert '"acr": "loa/3"' in claims and '"otp"' in claims and '"mfa"' in claims
    other.close()
