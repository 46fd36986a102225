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


def test_demo_login_shows_validated_claims_and_userinfo(chromium, demo: str) -> None:  # type: ignore[no-untyped-def]
    page = chromium.new_page(locale="zh-CN")
    page.goto(demo + "/demo")
    page.click("#login-with-yihao")
    page.fill("input[name=username]", "citizen")
    page.fill("input[name=password]", "yihao-demo-2026")
    page.click("button[type=submit]")
    page.click("button[value=approve]")
    page.wait_for_selector("#id-token-claims")
    claims = page.inner_text("#id-token-claims")
    assert '"iss": "%s"' % demo in claims and '"acr": "loa/1"' in claims
    assert "张三" in page.inner_text("#userinfo")
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
