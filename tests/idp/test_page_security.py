"""Security headers on every response, scripts only with the response's CSP nonce, links that stay on
this site, and SSO session hygiene: a new session id at every login (no fixation), idle and absolute
lifetimes."""
from __future__ import annotations

import re
import time
from typing import Any, Callable
from html import unescape
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from idp.sessions import Sessions
from tests.idp.conftest import Person, Provider, RpFactory, WorkerFactory
from tests.rp import Browser, parse_form


def _assert_hardened(response: httpx.Response) -> None:
    headers = response.headers
    assert headers["x-frame-options"] == "DENY", response.url
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert "strict-transport-security" not in headers  # a loopback issuer
    if headers.get("content-type", "").startswith("text/html"):
        nonce = re.search(r"script-src 'nonce-([^']+)'", headers["content-security-policy"])
        assert nonce, "an HTML page names its scripts' nonce"
        assert "unsafe-inline" not in headers["content-security-policy"]
        for tag in re.findall(r"<script[^>]*>", response.text):
            assert f'nonce="{nonce.group(1)}"' in tag, tag
        assert not re.search(r"\son[a-z]+=", response.text)  # no inline event handlers


def test_every_kind_of_response_carries_the_security_headers(provider: Provider, make_rp: RpFactory,
                                                             person: Person, browser: Browser) -> None:
    rp = make_rp()
    login_page = browser.follow(browser.get(rp.authorization().url), rp.redirect_uri)
    form = parse_form(login_page.text)
    consent_page = browser.follow(browser.http.post(urljoin(str(login_page.url), form["action"]),
                                                    data={"csrf_token": form["csrf_token"], "username": person.username,
                                                          "password": person.password}), rp.redirect_uri)
    logged_out = browser.follow(browser.get(f"{provider.url}/logout?client_id={rp.client_id}"), "never")
    responses = [
        login_page, consent_page, logged_out,
        browser.get(f"{provider.url}/interaction/not-a-uid"),  # an error page for people
        browser.get(f"{provider.url}/no/such/page"),
        browser.get(f"{provider.url}/.well-known/openid-configuration"),
        browser.get(f"{provider.url}/static/yihao.css"),
        browser.http.post(f"{provider.url}/token", data={"grant_type": "nope"}),
        browser.get(f"{provider.url}/healthz"),
    ]
    assert [r.status_code for r in responses] == [200, 200, 200, 400, 404, 200, 200, 400, 200], \
        [(r.url, r.status_code) for r in responses]
    for response in responses:
        _assert_hardened(response)


def test_each_page_gets_a_nonce_of_its_own(provider: Provider, make_rp: RpFactory, browser: Browser) -> None:
    url = make_rp().authorization().url
    nonces = {re.search(r"'nonce-([^']+)'", browser.follow(browser.get(url), "never")
                        .headers["content-security-policy"]).group(1) for _ in range(3)}  # type: ignore[union-attr]
    assert len(nonces) == 3


def test_hsts_is_sent_off_loopback(another_worker: WorkerFactory) -> None:
    worker = another_worker(issuer="https://id.example.gov.cn")
    assert httpx.get(f"{worker}/healthz").headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"


def _login(browser: Browser, url: str, person: Person, stop_at: str) -> httpx.Response:
    return browser.login(url, person.username, person.password, stop_at=stop_at)


def test_a_session_id_planted_before_login_is_never_adopted(provider: Provider, make_rp: RpFactory, person: Person,
                                                            browser: Browser) -> None:
    rp = make_rp()
    sessions = provider.core.sessions
    planted = "planted-by-someone-else-0123456789abcdef"
    browser.http.cookies.set(sessions.cookie, planted, domain="127.0.0.1")
    assert _login(browser, rp.authorization().url, person, rp.redirect_uri).status_code == 303
    issued = browser.http.cookies.get(sessions.cookie, domain="127.0.0.1")
    assert issued and issued != planted
    assert sessions.load(planted) is None
    assert sessions.load(issued).account_id == person.id  # type: ignore[union-attr]


def test_a_new_login_rotates_the_session_id_and_retires_the_old_one(provider: Provider, make_rp: RpFactory,
                                                                    person: Person, browser: Browser) -> None:
    rp = make_rp(first_party=True)
    sessions = provider.core.sessions
    _login(browser, rp.authorization().url, person, rp.redirect_uri)
    first = browser.http.cookies.get(sessions.cookie)
    _login(browser, rp.authorization(prompt="login").url, person, rp.redirect_uri)
    second = browser.http.cookies.get(sessions.cookie)
    assert first and second and first != second
    assert sessions.load(first) is None
    assert sessions.load(second).account_id == person.id  # type: ignore[union-attr]


def test_an_idle_session_ends_and_use_keeps_it_alive(provider: Provider) -> None:
    sessions = Sessions(provider.core.store, provider.core.settings.replace(session_idle_ttl=2, session_max_ttl=60))
    used, idle = sessions.create("someone", ("pwd",), "loa/1")[0], sessions.create("someone", ("pwd",), "loa/1")[0]
    for _ in range(3):
        time.sleep(1.1)
        assert sessions.load(used) is not None  # each use slides the idle window
    assert sessions.load(idle) is None  # 3.3 s without use, past the 2 s idle lifetime


def test_a_session_ends_at_its_absolute_lifetime_however_busy(provider: Provider) -> None:
    sessions = Sessions(provider.core.store, provider.core.settings.replace(session_idle_ttl=3, session_max_ttl=4))
    handle, session = sessions.create("someone", ("pwd",), "loa/1")
    alive = []
    for _ in range(6):  # used every 1.05 s: never idle; times are whole seconds, so the end is within 1 s of 4 s
        time.sleep(1.05)
        alive.append(sessions.load(handle) is not None)
    assert alive[0] and not alive[-1] and alive == sorted(alive, reverse=True)  # once ended, ended for good
    assert not sessions.alive(session.sid)


class _LoggedOutAfterRead:
    """The provider's own store; right after the first read of a session, a logout elsewhere ends it."""

    def __init__(self, store: Any, logout: Callable[[], object]) -> None:
        self._store, self._logout = store, logout

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def get(self, key: str) -> bytes | None:
        value = self._store.get(key)
        if key.startswith("sess:") and self._logout is not None:
            logout, self._logout = self._logout, None
            logout()
        return value


def test_a_logout_between_a_sessions_read_and_its_sliding_write_stays_a_logout(provider: Provider) -> None:
    settings = provider.core.settings.replace(session_idle_ttl=8, session_max_ttl=600)  # slides each second
    sessions = Sessions(provider.core.store, settings)
    handle, session = sessions.create("someone", ("pwd",), "loa/1")
    time.sleep(1.1)
    racing = Sessions(_LoggedOutAfterRead(provider.core.store, lambda: sessions.end(handle)), settings)  # type: ignore[arg-type]
    assert racing.load(handle) is None  # the request that read it just before the logout is not signed in
    assert sessions.load(handle) is None and not sessions.alive(session.sid)  # and the logout was not undone


class _SlideBeforeDelete:
    """The provider's own store; just before a session's old handle is deleted, a request still holding
    that handle slides its idle window."""

    def __init__(self, store: Any, handle_key: str, slide: Callable[[], object]) -> None:
        self._store, self._handle_key, self._slide = store, handle_key, slide

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def delete(self, key: str) -> None:
        if key == self._handle_key and self._slide is not None:
            slide, self._slide = self._slide, None
            slide()
        self._store.delete(key)


def test_a_slide_during_a_reauthentication_leaves_the_sid_with_the_new_handle(provider: Provider) -> None:
    from idp.crypto import digest

    settings = provider.core.settings.replace(session_idle_ttl=8, session_max_ttl=600)  # slides each second
    sessions = Sessions(provider.core.store, settings)
    old_handle, session = sessions.create("someone", ("pwd",), "loa/1")
    # the re-authentication's own read slides the window too: the other request's slide comes a second later
    store = _SlideBeforeDelete(provider.core.store, f"sess:{digest(old_handle)}",
                               lambda: (time.sleep(1.1), sessions.load(old_handle)))
    new_handle, again, ended = Sessions(store, settings).replace(old_handle, "someone", ("pwd",), "loa/1")  # type: ignore[arg-type]
    assert again.sid == session.sid and ended is None  # the same person: the session goes on under a new handle
    # an upstream's back-channel logout names the sid: it must find the session and end it
    assert sessions.end_sid(session.sid) is not None
    assert sessions.load(new_handle) is None and not sessions.alive(session.sid)


@pytest.mark.parametrize("path", ["//evil.example/x", "//evil.example", "/\\evil.example/x"])
def test_the_language_switch_stays_on_this_site_whatever_the_path(provider: Provider, path: str) -> None:
    with httpx.Client() as http:
        request = http.build_request("GET", provider.url + "/")
        request.url = request.url.copy_with(raw_path=path.encode())
        page = http.send(request)
        found = re.search(r'<a href="([^"]*)" hreflang=', page.text)
        assert page.status_code == 404 and found
        # resolved as a browser does: a backslash in a web URL's path is a slash (WHATWG URL)
        switch = urljoin(str(page.url), unescape(found.group(1)).replace("\\", "/"))
        assert urlsplit(switch)[:2] == urlsplit(provider.url)[:2]
        switched = http.get(switch)
    assert (switched.status_code, switched.headers["content-language"]) == (404, "en")
