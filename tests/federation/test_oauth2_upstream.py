"""Logging in at the city through a plain OAuth 2 provider (no discovery, no ID token): the person is who
its userinfo answer says under the claim mapping, under the same trust policy and linking rules."""
from __future__ import annotations

import contextlib
import json
import random
import re
import uuid
from typing import Any, Iterator
from urllib.parse import urljoin

import httpx
import pytest
from sqlalchemy import select

from federation.upstream import UpstreamInputError
from idp import events
from idp.models import AuditEvent
from tests.federation.conftest import citizen, city_rp, cli_env, is_consent_page, tokens, upstream_button
from tests.federation.oauth2_upstream import Behaviour, OAuth2Upstream, Person
from tests.idp.conftest import Provider
from tests.live import ThreadServer, free_port, yihao
from tests.rp import Browser, RelyingParty

SLUG = "gov-oauth"
MAPPING = {"sub": "data.user_id", "name": "data.profile.real_name", "id_number": "data.profile.cert_no",
           "email": "data.contacts.0.value"}


@pytest.fixture(scope="module")
def oauth2(city: Provider) -> Iterator[OAuth2Upstream]:
    port = free_port()
    upstream = OAuth2Upstream(f"http://127.0.0.1:{port}", "city-at-gov", "gov-s3cret-s3cret")
    with ThreadServer(upstream.app, port):
        register(city, upstream)
        yield upstream


def register(city: Provider, upstream: OAuth2Upstream, **changes: Any) -> None:
    """The city's registration of the OAuth 2 upstream: trusted for nothing and creating accounts, unless changed."""
    city.core.federation.upstreams.add_oauth2(**{
        "slug": SLUG, "name": "政务服务网 Gov portal", "authorization_endpoint": upstream.url + "/oauth/authorize",
        "token_endpoint": upstream.url + "/oauth/token", "userinfo_endpoint": upstream.url + "/api/me",
        "claim_map": MAPPING, "client_id": upstream.client_id, "client_secret": upstream.client_secret,
        "scope": "user_info", "may_create": True, **changes})


@contextlib.contextmanager
def policy(city: Provider, upstream: OAuth2Upstream, **changes: Any) -> Iterator[None]:
    register(city, upstream, **changes)
    try:
        yield
    finally:
        register(city, upstream)


@pytest.fixture(autouse=True)
def fresh(oauth2: OAuth2Upstream) -> Iterator[None]:
    oauth2.behaviour = Behaviour()
    oauth2.person = Person(uid=random.randrange(10**9))
    yield


def journey(city: Provider, browser: Browser, rp: RelyingParty | None = None) -> tuple[Any, httpx.Response]:
    """Press the upstream's button on the city's login page; the upstream signs the person in at once."""
    rp = rp or city_rp(city)
    auth = rp.authorization()
    page = browser.follow(browser.get(auth.url), rp.redirect_uri)
    response = browser.follow(browser.get(urljoin(str(page.url), upstream_button(page.text, SLUG))), rp.redirect_uri)
    while is_consent_page(response):
        response = browser.consent(response, "approve", rp.redirect_uri)
    return auth, response


def error_code(page: httpx.Response) -> str:
    match = re.search(r"<code>([a-z_]+)</code>", page.text)
    assert match, page.text[:300]
    return match.group(1)


def signed_in(city: Provider, browser: Browser, rp: RelyingParty | None = None) -> dict[str, Any]:
    rp = rp or city_rp(city)
    auth, response = journey(city, browser, rp)
    return tokens(rp, auth, response)


def test_a_person_logs_in_through_a_plain_oauth2_provider(city: Provider, oauth2: OAuth2Upstream,
                                                          browser: Browser) -> None:
    claims = signed_in(city, browser)
    assert "fed" in claims["amr"] and claims["iss"] == city.url
    request = oauth2.requests[-1]  # the token endpoint checked the PKCE verifier; the request had all of this
    assert (request["code_challenge_method"], request["scope"], request["response_type"]) == ("S256", "user_info", "code")
    assert len(request["state"]) >= 20 and "nonce" not in request


def test_the_second_login_is_the_same_account(city: Provider, oauth2: OAuth2Upstream) -> None:
    rp = city_rp(city)
    subjects = []
    for _ in range(2):
        browser = Browser()
        try:
            subjects.append(signed_in(city, browser, rp)["sub"])
        finally:
            browser.close()
    assert subjects[0] == subjects[1]
    account_id = city.core.federation.links.find(SLUG, str(oauth2.person.uid))
    assert account_id is not None and len(city.core.federation.links.of_account(account_id)) == 1


def test_a_trusted_id_number_links_to_the_local_account_that_holds_it(city: Provider, oauth2: OAuth2Upstream,
                                                                      browser: Browser) -> None:
    local = citizen(city)
    oauth2.person = Person(uid=random.randrange(10**9), cert_no=local.id_number.reveal())
    with policy(city, oauth2, trusted_claims=["id_number", "name"], identity_level=2):
        signed_in(city, browser)
    assert city.core.federation.links.find(SLUG, str(oauth2.person.uid)) == local.id
    (link,) = city.core.federation.links.of_account(local.id)
    assert link.linked_by == "id_number"


def test_an_id_number_it_is_not_trusted_for_is_audited_and_ignored(city: Provider, oauth2: OAuth2Upstream,
                                                                   browser: Browser) -> None:
    local = citizen(city)
    oauth2.person = Person(uid=random.randrange(10**9), cert_no=local.id_number.reveal())
    signed_in(city, browser)  # trusted for nothing: a new account, not the one holding the number
    account_id = city.core.federation.links.find(SLUG, str(oauth2.person.uid))
    assert account_id is not None and account_id != local.id
    assert city.core.identities.id_number(account_id) is None
    events.flush()
    with city.core.engine.connect() as connection:
        rows = connection.execute(select(AuditEvent.details).where(AuditEvent.event == events.UPSTREAM_LOGIN,
                                                                   AuditEvent.subject == account_id)).all()
    assert [r[0]["untrusted_claims"] for r in rows] == [["id_number", "name"]]
    assert not any(local.id_number.reveal() in json.dumps(r[0]) for r in rows)


def test_an_id_number_at_level_1_links_nothing(city: Provider, oauth2: OAuth2Upstream, browser: Browser) -> None:
    local = citizen(city)
    oauth2.person = Person(uid=random.randrange(10**9), cert_no=local.id_number.reveal())
    with policy(city, oauth2, trusted_claims=["id_number"], identity_level=1):
        signed_in(city, browser)
    assert city.core.federation.links.find(SLUG, str(oauth2.person.uid)) != local.id


def test_a_matching_email_never_links_an_account(city: Provider, oauth2: OAuth2Upstream, browser: Browser) -> None:
    local = citizen(city, level=1)
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    _set_email(city, local.id, email)
    oauth2.person = Person(uid=random.randrange(10**9), email=email)
    with policy(city, oauth2, trusted_claims=["email"], may_create=False):
        _auth, page = journey(city, browser)
    assert page.status_code == 200 and "/federation/link/" in page.text  # sign in locally to link, not linked
    assert city.core.federation.links.find(SLUG, str(oauth2.person.uid)) is None


def _set_email(city: Provider, account_id: str, email: str) -> None:
    from sqlalchemy import update

    from idp.models import Account

    with city.core.engine.begin() as connection:
        connection.execute(update(Account).where(Account.id == account_id).values(email=email, email_verified=True))


def test_an_account_it_creates_keeps_the_claims_it_is_trusted_for(city: Provider, oauth2: OAuth2Upstream,
                                                                  browser: Browser) -> None:
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    oauth2.person = Person(uid=random.randrange(10**9), name="钱七", email=email)
    with policy(city, oauth2, trusted_claims=["name", "email"]):
        signed_in(city, browser)
    profile = city.core.accounts.get(city.core.federation.links.find(SLUG, str(oauth2.person.uid)))
    assert (profile.name, profile.email, profile.email_verified) == ("钱七", email, True)


@pytest.mark.parametrize("body, status, code", [
    (json.dumps({"code": 0, "data": {"profile": {"real_name": "无名"}}}).encode(), 200, "upstream_no_subject"),
    (json.dumps({"code": 0, "data": {"user_id": ""}}).encode(), 200, "upstream_no_subject"),
    (json.dumps({"code": 0, "data": {"user_id": True}}).encode(), 200, "upstream_no_subject"),
    (b"<html>maintenance</html>", 200, "upstream_invalid_response"),
    (b"[1, 2]", 200, "upstream_invalid_response"),
    (b"", 401, "upstream_error"),
    (b"", 503, "upstream_unavailable"),
])
def test_a_userinfo_answer_that_does_not_name_the_person_gets_a_clear_page(city: Provider, oauth2: OAuth2Upstream,
                                                                           browser: Browser, body: bytes, status: int,
                                                                           code: str) -> None:
    oauth2.behaviour.userinfo_body, oauth2.behaviour.userinfo_status = body, status
    _auth, page = journey(city, browser)
    assert page.status_code == (502 if code == "upstream_unavailable" else 400)
    assert error_code(page) == code
    assert "身份提供方" in page.text  # zh-CN by default


def test_a_missing_subject_page_speaks_english_when_asked(city: Provider, oauth2: OAuth2Upstream) -> None:
    oauth2.behaviour.userinfo_body = b'{"data": {}}'
    browser = Browser()
    browser.http.headers["Accept-Language"] = "en"
    try:
        _auth, page = journey(city, browser)
    finally:
        browser.close()
    assert (page.status_code, error_code(page)) == (400, "upstream_no_subject")
    assert "did not say which of its accounts" in page.text


def test_a_slow_userinfo_endpoint_gets_a_timeout_page(city: Provider, oauth2: OAuth2Upstream, browser: Browser) -> None:
    oauth2.behaviour.userinfo_delay = 4.0  # the city waits 3 s
    _auth, page = journey(city, browser)
    assert (page.status_code, error_code(page)) == (502, "upstream_timeout")


def test_a_refusal_at_the_upstream_is_shown_as_such(city: Provider, oauth2: OAuth2Upstream, browser: Browser) -> None:
    oauth2.behaviour.authorize_error = "access_denied"
    _auth, page = journey(city, browser)
    assert (page.status_code, error_code(page)) == (400, "upstream_denied")


def test_the_client_can_authenticate_in_the_body(city: Provider, oauth2: OAuth2Upstream, browser: Browser) -> None:
    with policy(city, oauth2, token_auth="client_secret_post"):
        assert "sub" in signed_in(city, browser)


def test_a_wrong_client_secret_is_an_upstream_error(city: Provider, oauth2: OAuth2Upstream, browser: Browser) -> None:
    with policy(city, oauth2, client_secret="not-the-secret"):
        _auth, page = journey(city, browser)
    assert (page.status_code, error_code(page)) == (400, "upstream_error")


def test_it_has_no_back_channel_logout(city: Provider, oauth2: OAuth2Upstream) -> None:
    response = httpx.post(f"{city.url}/federation/{SLUG}/backchannel-logout", data={"logout_token": "a.b.c"})
    assert (response.status_code, response.json()["error"]) == (400, "invalid_request")


@pytest.mark.parametrize("changes, field", [
    ({"claim_map": {"name": "nickname"}}, "sub=FIELD"),
    ({"claim_map": {"sub": "id", "nickname": "nick"}}, "'nickname'"),
    ({"claim_map": {"sub": "data..id"}}, "dotted path"),
    ({"token_endpoint": "http://oauth.example.com/token"}, "token_endpoint must use https"),
    ({"userinfo_endpoint": "ftp://oauth.example.com/me"}, "userinfo_endpoint must be an absolute"),
    ({"trusted_claims": ["phone_number"]}, "not in the claim mapping"),
    ({"trusted_claims": ["nickname"]}, "trusted claims must be among"),
    ({"token_auth": "private_key_jwt"}, "token endpoint authentication"),
])
def test_a_bad_configuration_is_refused_with_the_field_named(city: Provider, oauth2: OAuth2Upstream,
                                                             changes: dict, field: str) -> None:
    with pytest.raises(UpstreamInputError) as refused:
        register(city, oauth2, slug="bad-oauth", **changes)
    assert field in str(refused.value)
    assert city.core.federation.upstreams.get("bad-oauth") is None


def test_an_upstream_keeps_its_kind(city: Provider, oauth2: OAuth2Upstream) -> None:
    with pytest.raises(UpstreamInputError) as refused:  # its links name subjects of the OAuth 2 provider's
        city.core.federation.upstreams.add(slug=SLUG, name="x", issuer="http://127.0.0.1:9", client_id="x",
                                           client_secret=None)
    assert str(refused.value) == f"{SLUG!r} is already an upstream of kind oauth2"


def test_the_command_line_adds_and_lists_an_oauth2_upstream(city: Provider, oauth2: OAuth2Upstream) -> None:
    env = cli_env(city)
    slug = f"cli-{uuid.uuid4().hex[:6]}"
    added = yihao(env, "upstreams", "add", slug, "--kind", "oauth2", "--name", "CLI portal", "--client-id", "cid",
                  "--authorization-endpoint", oauth2.url + "/oauth/authorize", "--token-endpoint",
                  oauth2.url + "/oauth/token", "--userinfo-endpoint", oauth2.url + "/api/me",
                  "--map", "sub=data.user_id", "--map", "name=data.profile.real_name", "--trust-claim", "name",
                  "--client-secret-stdin", "--json", stdin="cli-s3cret\n")
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout) == {"slug": slug, "kind": "oauth2", "redirect_uri": city.url + "/federation/callback"}
    listed = yihao(env, "upstreams", "list", "--json")
    (row,) = [r for r in json.loads(listed.stdout) if r["slug"] == slug]
    assert (row["kind"], row["issuer"], row["claim_map"]) == (
        "oauth2", None, {"sub": "data.user_id", "name": "data.profile.real_name"})
    missing = yihao(env, "upstreams", "add", slug + "x", "--kind", "oauth2", "--name", "N", "--client-id", "c",
                    "--authorization-endpoint", oauth2.url + "/a", "--token-endpoint", oauth2.url + "/t",
                    "--map", "sub=id")
    assert (missing.returncode, missing.stderr.strip()) == (
        1, "yihao: --userinfo-endpoint is required for an OAuth 2 upstream")
    from sqlalchemy import delete

    from federation.models import Upstream
    with city.core.engine.begin() as connection:  # the login page of other tests shows no stray button
        connection.execute(delete(Upstream).where(Upstream.slug == slug))
    city.core.store.incr("upstreams:version", ttl=60)
