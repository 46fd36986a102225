"""A person at the demo relying party, in headless Chromium: log in with Yihao, see verified claims."""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Iterator

import pytest

from tests.live import ProcessServer, free_port

pytestmark = pytest.mark.browser
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI needs Debian's chromium for the browser tests (.ci/run installs it)")
        pytest.skip("headless Chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    var = tmp_path_factory.mktemp("demo")
    env = {"YIHAO_DEMO": "true", "YIHAO_VAR_DIR": str(var), "YIHAO_DATABASE_URL": f"sqlite:///{var}/yihao.db",
           "YIHAO_LOG_LEVEL": "WARNING", "YIHAO_REDIS_URL": "", "YIHAO_MASTER_KEY": ""}  # the embedded default
    with ProcessServer(env, free_port(), Path(var) / "serve.log") as server:
        yield server.url


def _sign_in_as_the_demo_citizen(page) -> None:  # type: ignore[no-untyped-def]
    page.fill("input[name=username]", "citizen")
    page.fill("input[name=password]", "yihao-demo-2026")
    page.click("button[type=submit]")


def test_demo_login_shows_validated_claims_and_userinfo(chromium, demo: str) -> None:  # type: ignore[no-untyped-def]
    page = chromium.new_page(locale="zh-CN")
    page.goto(demo + "/demo")
    page.click("#login-with-yihao")
    _sign_in_as_the_demo_citizen(page)
    page.click("button[value=approve]")
    page.wait_for_selector("#id-token-claims")
    claims = page.inner_text("#id-token-claims")
    assert '"iss": "%s"' % demo in claims and '"acr": "loa/2"' in claims  # a password on an L3 identity
    assert page.get_attribute("#identity-level", "data-level") == "L3"  # the registry (L2), then in person at a counter
    assert "张三" in page.inner_text("#userinfo") and '"verified_claims"' in page.inner_text("#userinfo")
    assert "3501**********0012" in claims and "350102199003070012" not in claims  # not allowed the whole number
    page.close()


def test_a_newcomer_signs_up_at_the_demo_and_the_rp_shows_level_l2(chromium, demo: str) -> None:  # type: ignore[no-untyped-def]
    page = chromium.new_page(locale="zh-CN")
    page.goto(demo + "/demo")
    page.click("#login-with-yihao")
    page.click("#signup")
    page.fill("input[name=name]", "韩梅梅")
    page.fill("input[name=id_number]", "35010420000229002x")  # typed with a lower-case x
    page.fill("input[name=username]", "han.meimei")
    page.fill("input[name=password]", "a long pass phrase")
    page.click("button[value=signup]")
    page.click("button[value=approve]")
    page.wait_for_selector("#id-token-claims")
    assert page.get_attribute("#identity-level", "data-level") == "L2"
    assert '"name": "韩梅梅"' in page.inner_text("#id-token-claims")
    page.close()


def test_the_demo_citizen_acts_for_the_demo_enterprise(chromium, demo: str) -> None:  # type: ignore[no-untyped-def]
    page = chromium.new_page(locale="en-US")
    page.goto(demo + "/demo")
    page.click("#login-for-enterprise")
    _sign_in_as_the_demo_citizen(page)
    page.click("button.choice")
    page.click("button[value=approve]")
    page.wait_for_selector("#acting-for")
    assert "9135**********01X6" in page.inner_text("#acting-for")
    assert '"act"' in page.inner_text("#id-token-claims")
    page.close()


def test_login_page_is_readable_in_english_and_cannot_be_framed(chromium, demo: str) -> None:  # type: ignore[no-untyped-def]
    page = chromium.new_page(locale="en-US")
    page.goto(demo + "/demo/login")
    assert page.inner_text("h1") == "Sign in"
    assert page.locator("input[name=csrf_token]").count() == 1
    login_url = page.url
    frame_host = chromium.new_page()
    frame_host.set_content(f'<iframe id="f" src="{login_url}"></iframe>'
                           '<iframe id="control" srcdoc="<input name=password>"></iframe>')
    frame_host.wait_for_timeout(500)
    assert frame_host.frame_locator("#control").locator("input[name=password]").count() == 1
    assert frame_host.frame_locator("#f").locator("input[name=password]").count() == 0  # frame-ancestors 'none'
    page.close()
    frame_host.close()
