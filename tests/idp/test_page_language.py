"""Pages for people in both locales: the language switch reaches a page that works, and what a page
names (error codes, a client's own scopes) reads as words in zh-CN and English."""
from __future__ import annotations

import re
from html import unescape
from urllib.parse import urlencode, urljoin, urlsplit

import httpx
import pytest

from tests.idp.conftest import Person, Provider, RpFactory
from tests.rp import Browser, parse_form


def switch_link(page: httpx.Response) -> str:
    """Where the page's language switch leads, resolved against the page as a browser would."""
    found = re.search(r'<a href="([^"]*)" hreflang=', page.text)
    assert found, "expected a language switch"
    return urljoin(str(page.url), unescape(found.group(1)))


def alert(page: httpx.Response) -> str:
    found = re.search(r'<p class="error" role="alert">([^<]*)</p>', page.text)
    assert found, "expected a message"
    return unescape(found.group(1))


def test_switching_language_after_a_failed_login_shows_the_login_step_again(provider: Provider, make_rp: RpFactory,
                                                                          person: Person, browser: Browser) -> None:
    rp = make_rp()
    login = browser.follow(browser.get(rp.authorization().url), rp.redirect_uri)
    form = parse_form(login.text)
    failed = browser.http.post(urljoin(str(login.url), form["action"]),
                               data={"csrf_token": form["csrf_token"], "username": person.username, "password": "wrong"})
    assert failed.status_code == 200 and failed.headers["content-language"] == "zh-CN"
    switched = browser.get(switch_link(failed))  # a link: a GET, never the password posted again
    assert urlsplit(str(switched.url)).path == urlsplit(str(login.url)).path  # /interaction/{uid}
    assert switched.status_code == 200 and switched.headers["content-language"] == "en"
    assert parse_form(switched.text)["action"] == form["action"]


@pytest.mark.parametrize(("locale", "expected"), [
    ("zh-CN", {"invalid_request_object": "应用发来的登录请求无效，无法验证。",
               "invalid_request_uri": "应用引用的登录请求无法使用：它已过期、已被使用或无法获取。"}),
    ("en", {"invalid_request_object": "The application sent a sign-in request that is not valid or cannot be verified.",
            "invalid_request_uri": "The sign-in request the application referred to cannot be used: it has expired, "
                                   "was already used or cannot be fetched."}),
])
def test_a_refused_request_object_is_explained_in_the_pages_language(provider: Provider, make_rp: RpFactory,
                                                                     locale: str, expected: dict[str, str]) -> None:
    rp = make_rp()
    shown: dict[str, str] = {}
    for param in ({"request": "not-a-jwt"}, {"request_uri": "https://rp.example.gov.cn/unregistered"}):
        page = httpx.get(rp.authorize_url(client_id=rp.client_id, response_type="code", **param),
                         headers={"accept-language": locale})
        assert page.status_code == 400 and page.headers["content-language"] == locale
        code = re.search(r"<code>([^<]*)</code>", page.text)
        assert code
        shown[code.group(1)] = alert(page)
    assert shown == expected


def test_a_clients_own_scope_is_named_in_words_on_the_consent_page(provider: Provider, make_rp: RpFactory,
                                                                   person: Person, browser: Browser) -> None:
    rp = make_rp(scope="openid profile payments.read x<b>y")
    auth = rp.authorization(scope="openid profile payments.read x<b>y")
    consent = browser.login(auth.url, person.username, person.password, stop_at=rp.redirect_uri, consent=None)
    english = browser.get(urljoin(str(consent.url), "?" + urlencode({"lang": "en"})))
    items = [[unescape(item) for item in re.findall(r"<li>(.*?)</li>", page.text)] for page in (consent, english)]
    assert items == [["姓名等基本资料", "该应用自定义的权限：payments.read", "该应用自定义的权限：x<b>y"],
                     ["your name and basic profile", "access this application defines: payments.read",
                      "access this application defines: x<b>y"]]
    assert "<b>" not in consent.text  # the scope is text, escaped, never markup


@pytest.mark.parametrize(("header", "locale"), [
    ("en;q=0, zh-CN;q=0.5", "zh-CN"),  # English "not acceptable"
    ("en;q=0.3, zh;q=0.9", "zh-CN"),  # the weights, not the order, decide
    ("zh-CN;q=0.2, en-GB;q=0.8", "en"),
    ("fr, en;q=0.5", "en"),  # nothing for French: the next acceptable one
    ("en;q=abc, zh-CN;q=0.1", "zh-CN"),  # a malformed weight counts as not acceptable
])
def test_accept_language_weights_choose_the_page_language(provider: Provider, header: str, locale: str) -> None:
    page = httpx.get(provider.url + "/interaction/no-such-interaction", headers={"Accept-Language": header})
    assert page.headers["content-language"] == locale
