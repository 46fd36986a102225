"""Headless Chromium: the provider's pages refuse to be framed (clickjacking), on every backend."""
from __future__ import annotations

import pytest

from tests.idp.conftest import Provider, RpFactory
from tests.idp.test_browser_demo import chromium  # noqa: F401  (the shared headless Chromium fixture)

pytestmark = pytest.mark.browser


def test_the_login_page_cannot_be_framed_by_another_site(chromium, provider: Provider,  # type: ignore[no-untyped-def]  # noqa: F811
                                                         make_rp: RpFactory) -> None:
    context = chromium.new_context(locale="en-US")
    page = context.new_page()
    page.goto(make_rp().authorization().url)
    login_url = page.url  # the interaction's login page
    assert page.title().startswith("Sign in") and page.locator("input[name=password]").count() == 1
    framer = context.new_page()  # same browser: the login page's own cookies are there
    framer.set_content(f'<iframe id="login" src="{login_url}"></iframe>'
                       '<iframe id="control" srcdoc="<title>control</title><input name=password>"></iframe>')
    framer.wait_for_timeout(1000)
    documents = [frame.content() for frame in framer.frames[1:]]
    assert any("<title>control</title>" in html for html in documents)  # frames do render here
    assert not any("Yihao" in html for html in documents)  # but no page of the provider does
    context.close()
