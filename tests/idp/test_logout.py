"""Logout: RP-Initiated (end_session_endpoint), Back-Channel to every participant, Front-Channel iframes."""
from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import httpx
import pytest
from authlib.integrations.base_client.errors import OAuthError
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import Engine
from sqlmodel import Session, select

from idp import jose
from idp.backchannel import EVENT, Outbox
from idp.db import make_engine
from idp.models import LogoutDelivery
from tests.conftest import Backend, _postgres_database, make_settings
from tests.idp.conftest import Person, Provider, RpFactory, serve_provider
from tests.live import ProcessServer, free_port, yihao
from tests.rp import Browser, RelyingParty, callback_params, parse_form, refresh

REFRESHING = ["authorization_code", "refresh_token"]
FAST_RETRIES = {"YIHAO_LOGOUT_POLL_INTERVAL": "1", "YIHAO_LOGOUT_RETRY_BASE": "1", "YIHAO_LOGOUT_RETRY_MAX": "2"}


@pytest.fixture(scope="module")
def provider(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    """This module's own provider, with its delivery worker running and short retry delays."""
    with serve_provider(backend, tmp_path_factory.mktemp("var"), lifespan="on", **FAST_RETRIES) as provider:
        yield provider


class Receiver:
    """A relying party's back-channel logout endpoint on a real port; validates tokens as §2.6 says."""

    def __init__(self, issuer: str, port: int | None = None) -> None:
        self.issuer, self.port = issuer, port or free_port()
        self.tokens: dict[str, list[dict[str, Any]]] = {}  # client_id (the path) -> valid token claims
        self.rejected: list[str] = []
        self._server: ThreadingHTTPServer | None = None

    def uri(self, client_id: str) -> str:
        return f"http://127.0.0.1:{self.port}/bc/{client_id}"

    def validate(self, token: str, client_id: str) -> dict[str, Any]:
        keys = KeySet.import_key_set(httpx.get(self.issuer + "/jwks").json())
        decoded = jwt.decode(token, keys, algorithms=["RS256", "ES256", "EdDSA"])
        assert decoded.header["typ"] == "logout+jwt"
        jwt.JWTClaimsRegistry(iss={"essential": True, "value": self.issuer},
                              aud={"essential": True, "value": client_id}, iat={"essential": True},
                              exp={"essential": True}, jti={"essential": True}).validate(decoded.claims)
        claims = decoded.claims
        assert abs(claims["iat"] - time.time()) < 60 and claims["exp"] - claims["iat"] <= 300
        assert claims["events"] == {EVENT: {}} and "nonce" not in claims
        assert claims.get("sub") or claims.get("sid")
        return claims

    def __enter__(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0))).decode()
                client_id = self.path.rsplit("/", 1)[-1]
                try:
                    form = parse_qs(body, strict_parsing=True)
                    assert list(form) == ["logout_token"] and len(form["logout_token"]) == 1
                    claims = receiver.validate(form["logout_token"][0], client_id)
                except (AssertionError, JoseError, ValueError, KeyError) as exc:
                    receiver.rejected.append(repr(exc))
                    self.send_response(400)
                else:
                    receiver.tokens.setdefault(client_id, []).append(claims)
                    self.send_response(200)
                self.send_header("Cache-Control", "no-store")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    def wait_for(self, client_ids: list[str], timeout: float = 20) -> dict[str, list[dict[str, Any]]]:
        wait(lambda: all(c in self.tokens for c in client_ids), timeout)
        return self.tokens


def wait(condition: Callable[[], Any], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError("the condition did not hold in time")


def sign_in(rp: RelyingParty, browser: Browser, person: Person) -> dict[str, Any]:
    """The browser signs in (or rides its SSO session) through `rp`; returns the verified token response."""
    auth = rp.authorization()
    response = browser.login(auth.url, person.username, person.password, stop_at=rp.redirect_uri)
    body = rp.fetch_token(callback_params(response)["code"], auth.verifier)
    body["claims"] = rp.validate_id_token(body["id_token"], auth.nonce, body["access_token"])
    return body


def silent_auth(rp: RelyingParty, browser: Browser) -> dict[str, str]:
    return callback_params(browser.follow(browser.get(rp.authorization(prompt="none").url), rp.redirect_uri))


def logout(issuer: str, browser: Browser, **params: str) -> httpx.Response:
    return browser.get(issuer + "/logout?" + urlencode(params))


def confirm(browser: Browser, page: httpx.Response, action: str, csrf: str | None = None) -> httpx.Response:
    form = parse_form(page.text)
    assert form["action"].startswith("/logout/"), f"expected the confirmation page, got {page.status_code}"
    return browser.http.post(urljoin(str(page.url), form["action"]),
                             data={"csrf_token": csrf or form["csrf_token"], "action": action})


def with_logout(make_rp: RpFactory, **metadata: Any) -> tuple[RelyingParty, str]:
    after = f"https://rp-{uuid.uuid4().hex[:8]}.example.gov.cn/signed-out"
    return make_rp(first_party=True, post_logout_redirect_uris=[after], **metadata), after


# -- RP-Initiated Logout -------------------------------------------------------------------------
def test_a_valid_hint_logs_out_at_once_and_redirects_with_state(provider: Provider, make_rp: RpFactory,
                                                                 person: Person, browser: Browser) -> None:
    rp, after = with_logout(make_rp)
    tokens = sign_in(rp, browser, person)
    response = logout(provider.url, browser, id_token_hint=tokens["id_token"], post_logout_redirect_uri=after,
                      state="xyz-123")
    assert response.status_code == 303
    assert response.headers["location"] == after + "?state=xyz-123"
    assert 'yihao_session=""' in response.headers["set-cookie"]  # the cookie is cleared
    assert silent_auth(rp, browser)["error"] == "login_required"


def test_discovery_advertises_the_end_session_endpoint_and_both_channels(provider: Provider) -> None:
    meta = httpx.get(provider.url + "/.well-known/openid-configuration").json()
    assert meta["end_session_endpoint"] == provider.url + "/logout"
    for feature in ("backchannel_logout_supported", "backchannel_logout_session_supported",
                    "frontchannel_logout_supported", "frontchannel_logout_session_supported"):
        assert meta[feature] is True


def test_without_a_hint_the_person_confirms_before_being_signed_out(provider: Provider, make_rp: RpFactory,
                                                                    person: Person, browser: Browser) -> None:
    rp, _ = with_logout(make_rp)
    sign_in(rp, browser, person)
    page = logout(provider.url, browser)
    assert page.status_code == 200 and page.headers["content-language"] == "zh-CN"
    assert 'value="logout"' in page.text and 'value="stay"' in page.text
    assert silent_auth(rp, browser).get("code"), "showing the page must not sign anyone out"
    done = confirm(browser, logout(provider.url, browser), "logout")
    assert done.status_code == 200 and "您已退出登录" in done.text
    assert silent_auth(rp, browser)["error"] == "login_required"


def test_a_hint_from_an_earlier_session_asks_before_signing_out(provider: Provider, make_rp: RpFactory,
                                                                 person: Person, browser: Browser) -> None:
    rp, after = with_logout(make_rp)
    earlier = sign_in(rp, browser, person)
    confirm(browser, logout(provider.url, browser), "logout")
    current = sign_in(rp, browser, person)
    assert current["claims"]["sid"] != earlier["claims"]["sid"]
    page = logout(provider.url, browser, id_token_hint=earlier["id_token"], post_logout_redirect_uri=after)
    assert page.status_code == 200 and 'value="logout"' in page.text  # the person is asked (§2)
    assert silent_auth(rp, browser).get("code"), "the current session must still be signed in"


def test_a_consent_page_left_open_after_logout_issues_nothing(provider: Provider, make_rp: RpFactory,
                                                             person: Person, browser: Browser) -> None:
    rp = make_rp()  # not first-party: the person is asked to consent
    auth = rp.authorization()
    consent_page = browser.login(auth.url, person.username, person.password, stop_at=rp.redirect_uri, consent=None)
    assert parse_form(consent_page.text)["action"].endswith("/consent")
    confirm(browser, logout(provider.url, browser), "logout")  # signed out, say in another tab
    approved = browser.consent(consent_page, "approve", rp.redirect_uri)
    assert approved.status_code == 400 and "interaction_expired" in approved.text
    assert "location" not in approved.headers


def test_the_confirmation_page_speaks_english_when_asked(provider: Provider, person: Person, make_rp: RpFactory,
                                                         browser: Browser) -> None:
    rp, _ = with_logout(make_rp)
    sign_in(rp, browser, person)
    page = logout(provider.url, browser, ui_locales="en")
    assert page.headers["content-language"] == "en" and "Stay signed in" in page.text


def test_a_wrong_csrf_token_is_refused_and_the_session_stays(provider: Provider, make_rp: RpFactory,
                                                              person: Person, browser: Browser) -> None:
    rp, _ = with_logout(make_rp)
    sign_in(rp, browser, person)
    refused = confirm(browser, logout(provider.url, browser), "logout", csrf="forged-token")
    assert refused.status_code == 403
    assert silent_auth(rp, browser).get("code")


def test_staying_signed_in_returns_to_the_client_with_the_session_kept(provider: Provider, make_rp: RpFactory,
                                                                        person: Person, browser: Browser) -> None:
    rp, after = with_logout(make_rp)
    sign_in(rp, browser, person)
    page = logout(provider.url, browser, client_id=rp.client_id, post_logout_redirect_uri=after, state="s1")
    back = confirm(browser, page, "stay")
    assert back.status_code == 303 and back.headers["location"] == after + "?state=s1"
    assert silent_auth(rp, browser).get("code")


def test_an_unregistered_post_logout_redirect_uri_is_an_error_page_never_a_redirect(
        provider: Provider, make_rp: RpFactory, person: Person, browser: Browser) -> None:
    rp, after = with_logout(make_rp)
    tokens = sign_in(rp, browser, person)
    for uri in (after + "/extra", "https://attacker.example.com/", after.upper()):
        response = logout(provider.url, browser, id_token_hint=tokens["id_token"], post_logout_redirect_uri=uri)
        assert response.status_code == 400 and "location" not in response.headers
        assert "<code>invalid_request</code>" in response.text
    # without a hint or client_id, no client is known to have registered it
    anonymous = logout(provider.url, browser, post_logout_redirect_uri=after)
    assert anonymous.status_code == 400 and "location" not in anonymous.headers
    assert silent_auth(rp, browser).get("code")


def test_a_hint_for_another_client_with_a_different_client_id_is_an_error(
        provider: Provider, make_rp: RpFactory, person: Person, browser: Browser) -> None:
    rp, after = with_logout(make_rp)
    other, _ = with_logout(make_rp)
    tokens = sign_in(rp, browser, person)
    response = logout(provider.url, browser, id_token_hint=tokens["id_token"], client_id=other.client_id,
                      post_logout_redirect_uri=after)
    assert response.status_code == 400 and "location" not in response.headers
    assert "client_id does not match the audience of id_token_hint" in response.text
    assert silent_auth(rp, browser).get("code")


def test_an_invalid_hint_asks_for_confirmation_instead(provider: Provider, make_rp: RpFactory, person: Person,
                                                      browser: Browser) -> None:
    rp, after = with_logout(make_rp)
    tokens = sign_in(rp, browser, person)
    header, payload, signature = tokens["id_token"].split(".")
    forged = header + "." + payload + "." + signature[::-1]
    page = logout(provider.url, browser, id_token_hint=forged, client_id=rp.client_id, post_logout_redirect_uri=after)
    assert page.status_code == 200 and 'value="logout"' in page.text
    assert confirm(browser, page, "logout").headers["location"] == after


@pytest.mark.parametrize("query", ["state=a&state=b", "id_token_hint=x&id_token_hint=y", "state=%ff",
                                   "client_id=" + "x" * 65, "post_logout_redirect_uri=" + "x" * 3000])
def test_bad_input_is_a_clear_400_page(provider: Provider, query: str) -> None:
    response = httpx.get(f"{provider.url}/logout?{query}")
    assert response.status_code == 400 and response.headers["content-type"].startswith("text/html")
    assert "<code>invalid_" in response.text


def test_a_post_that_is_not_a_form_is_a_400_page_and_an_unknown_confirmation_expired(provider: Provider) -> None:
    posted = httpx.post(provider.url + "/logout", content=b'{"state":1}', headers={"content-type": "application/json"})
    assert posted.status_code == 400 and "<code>invalid_request</code>" in posted.text
    unknown = httpx.post(provider.url + "/logout/nope", data={"csrf_token": "x", "action": "logout"})
    assert unknown.status_code == 400 and "<code>logout_expired</code>" in unknown.text


def test_logout_by_post_with_a_hint_works_too(provider: Provider, make_rp: RpFactory, person: Person,
                                             browser: Browser) -> None:
    rp, after = with_logout(make_rp)
    tokens = sign_in(rp, browser, person)
    response = browser.http.post(provider.url + "/logout", data={"id_token_hint": tokens["id_token"],
                                                                 "post_logout_redirect_uri": after})
    assert response.status_code == 303 and response.headers["location"] == after
    assert silent_auth(rp, browser)["error"] == "login_required"


def test_an_expired_hint_still_logs_out_at_once(provider: Provider, make_rp: RpFactory, person: Person,
                                               browser: Browser) -> None:
    rp, after = with_logout(make_rp)
    claims = sign_in(rp, browser, person)["claims"]
    expired = {k: claims[k] for k in ("iss", "sub", "aud", "sid")} | {"iat": 1_700_000_000, "exp": 1_700_000_600}
    hint = jose.sign(expired, provider.core.keys.signing_key("RS256"))
    response = logout(provider.url, browser, id_token_hint=hint, post_logout_redirect_uri=after)
    assert response.status_code == 303 and response.headers["location"] == after
    assert silent_auth(rp, browser)["error"] == "login_required"


def test_a_cross_site_post_without_cookies_is_turned_into_a_get_that_carries_them(provider: Provider,
                                                                                  make_rp: RpFactory) -> None:
    rp = make_rp()
    response = httpx.post(provider.url + "/logout", data={"client_id": rp.client_id, "state": "s 1"})
    assert response.status_code == 303
    assert response.headers["location"] == f"/logout?client_id={rp.client_id}&state=s+1"


# -- what a logout revokes ----------------------------------------------------------------------
def test_logout_revokes_the_sessions_refresh_tokens_and_their_access_tokens_but_not_offline_ones(
        provider: Provider, make_rp: RpFactory, person: Person, browser: Browser) -> None:
    bound, after = with_logout(make_rp, grant_types=REFRESHING, session_refresh_tokens=True)
    offline = make_rp(first_party=True, grant_types=REFRESHING, scope="openid offline_access")
    offline.scope = "openid offline_access"
    plain = make_rp(first_party=True)  # access tokens only, no refresh family
    tokens = [sign_in(rp, browser, person) for rp in (bound, offline, plain)]
    assert bound.userinfo(tokens[0]["access_token"]).status_code == 200
    logout(provider.url, browser, id_token_hint=tokens[0]["id_token"], post_logout_redirect_uri=after)
    assert bound.userinfo(tokens[0]["access_token"]).status_code == 401  # revoked with its family, at once
    assert plain.userinfo(tokens[2]["access_token"]).status_code == 401  # the session's grants end with it
    assert offline.userinfo(tokens[1]["access_token"]).status_code == 200
    with pytest.raises(OAuthError) as raised:
        refresh(bound, tokens[0]["refresh_token"])
    assert raised.value.error == "invalid_grant"
    assert refresh(offline, tokens[1]["refresh_token"])["access_token"]  # offline_access outlives the session


# -- Back-Channel Logout ------------------------------------------------------------------------
def test_every_participant_with_a_backchannel_uri_receives_a_valid_logout_token(
        provider: Provider, make_rp: RpFactory, person: Person, browser: Browser) -> None:
    with Receiver(provider.url) as receiver:
        ids = [f"bc-{uuid.uuid4().hex[:12]}" for _ in range(2)]
        first, after = with_logout(make_rp, client_id=ids[0], backchannel_logout_uri=receiver.uri(ids[0]))
        second = make_rp(first_party=True, client_id=ids[1], backchannel_logout_uri=receiver.uri(ids[1]),
                         id_token_signed_response_alg="ES256")
        quiet = make_rp(first_party=True)  # took part, but asked for no back-channel notice
        bystander_id = f"bc-{uuid.uuid4().hex[:12]}"  # registered, never used in this session
        make_rp(client_id=bystander_id, backchannel_logout_uri=receiver.uri(bystander_id))
        tokens = [sign_in(rp, browser, person) for rp in (first, second, quiet)]
        sids = {t["claims"]["sid"] for t in tokens}
        assert len(sids) == 1
        response = logout(provider.url, browser, id_token_hint=tokens[0]["id_token"], post_logout_redirect_uri=after)
        assert response.status_code == 303
        got = receiver.wait_for(ids)
        time.sleep(0.5)
        assert set(got) == set(ids) and not receiver.rejected
        for claims, signed_in in zip((got[ids[0]][0], got[ids[1]][0]), tokens):
            assert claims["sid"] == signed_in["claims"]["sid"] and claims["sub"] == signed_in["claims"]["sub"]
        assert got[ids[0]][0]["sub"] != got[ids[1]][0]["sub"]  # pairwise subjects, as in the ID tokens
        assert len(got[ids[0]]) == 1 and len(got[ids[1]]) == 1


def test_a_receiver_that_is_down_at_first_gets_the_token_when_it_comes_up(
        provider: Provider, make_rp: RpFactory, person: Person, browser: Browser) -> None:
    receiver = Receiver(provider.url)
    client_id = f"bc-{uuid.uuid4().hex[:12]}"
    rp, after = with_logout(make_rp, client_id=client_id, backchannel_logout_uri=receiver.uri(client_id))
    tokens = sign_in(rp, browser, person)
    logout(provider.url, browser, id_token_hint=tokens["id_token"], post_logout_redirect_uri=after)

    def failed_once() -> LogoutDelivery | None:
        with Session(provider.core.engine) as session:
            row = session.exec(select(LogoutDelivery).where(LogoutDelivery.client_id == client_id)).one()
        return row if row.last_error and row.status == "pending" else None

    wait(failed_once)
    with receiver:
        got = receiver.wait_for([client_id])
    assert got[client_id][0]["sid"] == tokens["claims"]["sid"]
    with Session(provider.core.engine) as session:
        row = session.exec(select(LogoutDelivery).where(LogoutDelivery.client_id == client_id)).one()
    assert row.status == "delivered" and row.attempts >= 2 and row.jti == got[client_id][0]["jti"]


def test_a_delivery_is_given_up_after_the_last_attempt(provider: Provider) -> None:
    client, _ = provider.core.clients.create(name="Gone", redirect_uris=["https://gone.example.gov.cn/cb"],
                                             backchannel_logout_uri=f"http://127.0.0.1:{free_port()}/bc")
    row = LogoutDelivery(client_id=client.client_id, uri=str(client.backchannel_logout_uri), sub="s", sid="x",
                         jti=uuid.uuid4().hex, attempts=provider.core.settings.logout_max_attempts - 1)
    row_id = row.id
    with Session(provider.core.engine) as session, session.begin():
        session.add(row)

    def status() -> str:
        with Session(provider.core.engine) as session:
            found = session.get(LogoutDelivery, row_id)
            assert found is not None
            return found.status

    wait(lambda: status() == "failed")


def test_a_delivery_to_a_deleted_client_is_given_up_at_once(provider: Provider) -> None:
    client, _ = provider.core.clients.create(name="Deleted", redirect_uris=["https://deleted.example.gov.cn/cb"],
                                             backchannel_logout_uri=f"http://127.0.0.1:{free_port()}/bc")
    row = LogoutDelivery(client_id=client.client_id, uri=str(client.backchannel_logout_uri), sub="s", sid="x",
                         jti=uuid.uuid4().hex)
    row_id = row.id
    assert provider.core.clients.delete(client.client_id)
    with Session(provider.core.engine) as session, session.begin():
        session.add(row)

    def settled() -> tuple[str, int, str | None]:
        with Session(provider.core.engine) as session:
            found = session.get(LogoutDelivery, row_id)
            assert found is not None
            return found.status, found.attempts, found.last_error

    wait(lambda: settled()[0] != "pending")
    assert settled() == ("failed", 1, "the client is no longer registered")


def test_concurrent_outboxes_deliver_each_token_exactly_once(provider: Provider, make_rp: RpFactory) -> None:
    with Receiver(provider.url) as receiver:
        client_id = f"bc-{uuid.uuid4().hex[:12]}"
        make_rp(client_id=client_id, backchannel_logout_uri=receiver.uri(client_id))
        rows = [LogoutDelivery(client_id=client_id, uri=receiver.uri(client_id), sub="s", sid=f"sid-{n}",
                               jti=uuid.uuid4().hex) for n in range(40)]
        sent = sorted(row.jti for row in rows)
        with Session(provider.core.engine) as session, session.begin():
            session.add_all(rows)
        outboxes = [Outbox(provider.core) for _ in range(3)]
        threads = [threading.Thread(target=o.deliver_due) for o in outboxes for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wait(lambda: len(receiver.tokens.get(client_id, [])) >= 40)
        time.sleep(0.5)
        for outbox in outboxes:
            outbox.close()
    jtis = [claims["jti"] for claims in receiver.tokens[client_id]]
    assert sorted(jtis) == sent  # each once: none lost, none twice


# -- Front-Channel Logout -----------------------------------------------------------------------
def test_the_signed_out_page_loads_each_participants_front_channel_uri(provider: Provider, make_rp: RpFactory,
                                                                       person: Person, browser: Browser) -> None:
    front = "https://front.example.gov.cn/fc-logout?x=1"
    rp, after = with_logout(make_rp, frontchannel_logout_uri=front, frontchannel_logout_session_required=True)
    tokens = sign_in(rp, browser, person)
    page = logout(provider.url, browser, id_token_hint=tokens["id_token"], post_logout_redirect_uri=after, state="s")
    assert page.status_code == 200  # a page first, so the iframes can load; it then continues to the RP
    src = parse_qs(urlsplit(page.text.split('<iframe class="rp-logout" src="')[1].split('"')[0]
                            .replace("&amp;", "&")).query)
    assert src == {"x": ["1"], "iss": [provider.url], "sid": [tokens["claims"]["sid"]]}
    assert "frame-src https://front.example.gov.cn" in page.headers["content-security-policy"]
    assert f'href="{after}?state=s"' in page.text
    plain = httpx.get(provider.url + "/logout")
    assert "frame-src" not in plain.headers["content-security-policy"]


# -- across processes ---------------------------------------------------------------------------
@pytest.mark.multiprocess
def test_pending_deliveries_are_completed_by_a_new_server_process(backend: Backend, tmp_path: Path) -> None:
    database = iter(_postgres_database()) if backend.production else None
    url = next(database) if database else f"sqlite:///{tmp_path}/restart.db"
    try:
        _restart_delivers(backend, url, tmp_path)
    finally:
        if database:
            next(database, None)  # drops the database


def _restart_delivers(backend: Backend, database_url: str, tmp_path: Path) -> None:
    settings = make_settings(backend, tmp_path)
    env = {"YIHAO_DATABASE_URL": database_url, "YIHAO_REDIS_URL": backend.redis_url or "",
           "YIHAO_MASTER_KEY": settings.master_key, "YIHAO_VAR_DIR": str(tmp_path),
           "YIHAO_REDIS_PREFIX": f"yihao-test:{uuid.uuid4().hex}:", "YIHAO_LOG_LEVEL": "WARNING",
           "YIHAO_ARGON2_MEMORY_KIB": "8192", "YIHAO_LOGOUT_POLL_INTERVAL": "1",
           "YIHAO_LOGOUT_RETRY_BASE": "2", "YIHAO_LOGOUT_RETRY_MAX": "2"}
    issuer = f"http://127.0.0.1:{free_port()}"
    receiver = Receiver(issuer)
    assert yihao(env, "db", "upgrade").returncode == 0
    yihao(env, "accounts", "create", "restart.citizen", "--password-stdin", stdin="restart-pass-word\n")
    created = yihao(env | {"YIHAO_ISSUER": issuer}, "clients", "create", "--name", "Restart", "--first-party",
                    "--redirect-uri", "https://rp.example.gov.cn/cb", "--client-id", "restart-rp",
                    "--post-logout-redirect-uri", "https://rp.example.gov.cn/bye",
                    "--backchannel-logout-uri", receiver.uri("restart-rp"), "--json")
    assert created.returncode == 0, created.stderr
    client = json.loads(created.stdout)
    port = int(issuer.rsplit(":", 1)[1])
    browser = Browser()
    with ProcessServer(env, port, tmp_path / "first.log", issuer) as first:
        rp = RelyingParty(first.url, client["client_id"], client["client_secret"], "https://rp.example.gov.cn/cb")
        tokens = sign_in(rp, browser, Person("", "restart.citizen", "restart-pass-word"))
        bye = logout(first.url, browser, id_token_hint=tokens["id_token"],
                     post_logout_redirect_uri="https://rp.example.gov.cn/bye")
        assert bye.status_code == 303
        time.sleep(1)  # the first attempt finds the receiver down
    browser.close()
    engine = make_engine(make_settings(backend, tmp_path, YIHAO_DATABASE_URL=database_url).database_url)
    try:
        left = _deliveries(engine)
        assert [(row.status, row.attempts >= 1, row.last_error) for row in left] == [("pending", True, "ConnectError")]
        with receiver, ProcessServer(env, port, tmp_path / "second.log", issuer):
            got = receiver.wait_for(["restart-rp"], timeout=30)
        assert got["restart-rp"][0]["sid"] == tokens["claims"]["sid"]
        assert got["restart-rp"][0]["jti"] == left[0].jti and _deliveries(engine)[0].status == "delivered"
    finally:
        engine.dispose()


def _deliveries(engine: Engine) -> list[LogoutDelivery]:
    with Session(engine) as session:
        rows = list(session.exec(select(LogoutDelivery)))
        session.expunge_all()
    return rows
