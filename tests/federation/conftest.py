"""Two real Yihao servers on loopback: the province (upstream) and the city (downstream), each with its
own database (its own SQLite file, or its own PostgreSQL database) and its own Redis prefix."""
from __future__ import annotations

import contextlib
import random
import re
import uuid
from dataclasses import dataclass
from typing import Iterator
from urllib.parse import urljoin

import httpx
import pytest

from idp.app import create_app
from idp.core import build_core
from idp.crypto import b64u
from tests.conftest import Backend, _postgres_database, make_settings
from tests.idp.conftest import Provider, serve_provider
from tests.federation.fake_upstream import FakeUpstream
from tests.live import ThreadServer, free_port
from realname.pii import IdNumber
from realname.testdata import make_id_number
from tests.rp import Browser, RelyingParty, callback_params, parse_form

SLUG = "province"


def _own_backend(backend: Backend, tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[Backend]:
    """A database of the deployment's own (SQLite file or PostgreSQL database), as a separate deployment has;
    it shares Redis, under a prefix of its own (set by the provider)."""
    if not backend.production:
        yield Backend("sqlite", f"sqlite:///{tmp_path_factory.mktemp(name) / (name + '.db')}", None)
        return
    for url in _postgres_database():
        yield Backend("postgres", url, backend.redis_url, backend.redis_prefix)


@pytest.fixture(scope="session")
def province_backend(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    yield from _own_backend(backend, tmp_path_factory, "province")


@pytest.fixture(scope="session")
def province(province_backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    # On `localhost` rather than 127.0.0.1: cookies do not tell ports apart, and a browser holds a
    # session at both providers at once.
    port = free_port()
    settings = make_settings(province_backend, tmp_path_factory.mktemp("province"), YIHAO_ISSUER=f"http://localhost:{port}",
                             YIHAO_MASTER_KEY=b64u(b"p" * 32), YIHAO_REDIS_PREFIX=f"yihao-test:{uuid.uuid4().hex}:")
    core = build_core(settings, migrate=True)
    with ThreadServer(create_app(settings, core), port, "on"):
        yield Provider(settings.issuer, core, province_backend)
    core.close()


@pytest.fixture(scope="session")
def city_backend(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    yield from _own_backend(backend, tmp_path_factory, "city")


@pytest.fixture(scope="session")
def city(city_backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    with serve_provider(city_backend, tmp_path_factory.mktemp("city-var"), lifespan="on",
                        YIHAO_MASTER_KEY=b64u(b"c" * 32), YIHAO_UPSTREAM_TIMEOUT_MS="3000") as provider:
        yield provider


@dataclass
class Federated:
    """The city trusts the province; `client_id`/`secret` is the city's client at the province."""

    province: Provider
    city: Provider
    client_id: str
    secret: str


def register_city(province: Provider, city: Provider, slug: str = SLUG, *,
                  release_id_number: bool = True) -> tuple[str, str]:
    """The city as a first-party client of the province, with back-channel logout, allowed the whole ID
    number: the province releases it in verified_claims once the person consents there."""
    # Public subjects: a partner of the province (also public) then knows the person by the same `sub`,
    # so a provincial token it holds names the person the city linked.
    client, secret = province.core.clients.create(
        name="市政务服务 City", redirect_uris=[city.url + "/federation/callback"], first_party=True,
        subject_type="public", post_logout_redirect_uris=[city.url + "/federation/logged-out"],
        backchannel_logout_uri=f"{city.url}/federation/{slug}/backchannel-logout",
        backchannel_logout_session_required=True, release_id_number=release_id_number)
    assert secret is not None
    return client.client_id, secret


@pytest.fixture(scope="session")
def federated(province: Provider, city: Provider) -> Federated:
    client_id, secret = register_city(province, city)
    city.core.federation.upstreams.add(
        slug=SLUG, name="省统一身份认证平台", issuer=province.url, client_id=client_id, client_secret=secret,
        trusted_claims=["id_number", "name"], identity_level=2, acr_map={"loa/1": "loa/1", "loa/2": "loa/2"},
        may_create=True)
    return Federated(province, city, client_id, secret)


def city_rp(city: Provider) -> RelyingParty:
    redirect = f"https://app-{uuid.uuid4().hex[:8]}.city.example.gov.cn/callback"
    client, secret = city.core.clients.create(name="城市应用 City app", redirect_uris=[redirect], first_party=True)
    return RelyingParty(city.url, client.client_id, secret, redirect)


def upstream_button(page_html: str, slug: str = SLUG) -> str:
    match = re.search(rf'href="(/interaction/[^"]+/upstream/{slug})"', page_html)
    assert match, "the login page has no button for the upstream"
    return match.group(1)


def is_consent_page(page: httpx.Response) -> bool:
    return page.status_code == 200 and parse_form(page.text).get("action", "").endswith("/consent")


def answer_consents(browser: Browser, page: httpx.Response, stop_at: str, action: str = "approve") -> httpx.Response:
    """Answer each consent page on the way (the province's, asking for the ID number; a city app's)."""
    while is_consent_page(page):
        page = browser.consent(page, action, stop_at)
    return page


def broker_login(browser: Browser, rp: RelyingParty, username: str, password: str, slug: str = SLUG,
                 consent: str = "approve"):
    """At the city's login page press "Log in with <province>", sign in at the province, answer its consent
    page (the whole ID number) with `consent`; the response that ends the journey (a redirect to the RP,
    or a page)."""
    auth = rp.authorization()
    page = browser.follow(browser.get(auth.url), rp.redirect_uri)
    start = urljoin(str(page.url), upstream_button(page.text, slug))
    page = browser.login(start, username, password, stop_at=rp.redirect_uri, consent=None)
    return auth, answer_consents(browser, page, rp.redirect_uri, consent)


def tokens(rp: RelyingParty, auth, response) -> dict:
    params = callback_params(response)
    assert "code" in params, params
    token = rp.fetch_token(params["code"], auth.verifier)
    return rp.validate_id_token(token["id_token"], auth.nonce) | {"_token": token}


@pytest.fixture
def browser() -> Iterator[Browser]:
    b = Browser()
    yield b
    b.close()


_rng = random.Random()


@dataclass
class Citizen:
    id: str
    username: str
    password: str
    id_number: IdNumber


def citizen(provider: Provider, *, level: int = 2, id_number: IdNumber | None = None) -> Citizen:
    """A person with a password, verified at `level` (a fresh synthetic ID number unless one is given)."""
    username, password = f"c{uuid.uuid4().hex[:10]}", "a good password 1"
    profile = provider.core.accounts.create(username, password, name="王五")
    number = id_number or IdNumber.parse(make_id_number(_rng))
    provider.core.identities.bind_person(profile.id, number, level=level, source="test-registry")
    return Citizen(profile.id, username, password, number)


@contextlib.contextmanager
def policy(federated: Federated, **changes: object) -> Iterator[None]:
    """The city's trust policy for the province changed for one test, then put back."""
    base = dict(slug=SLUG, name="省统一身份认证平台", issuer=federated.province.url, client_id=federated.client_id,
                client_secret=federated.secret, trusted_claims=["id_number", "name"], identity_level=2,
                acr_map={"loa/1": "loa/1", "loa/2": "loa/2"}, may_create=True)
    federated.city.core.federation.upstreams.add(**{**base, **changes})
    try:
        yield
    finally:
        federated.city.core.federation.upstreams.add(**base)


FAKE = "fake"


@pytest.fixture(scope="session")
def fake(city: Provider) -> Iterator[FakeUpstream]:
    """A stand-in upstream registered at the city, for what a real Yihao never sends."""
    port = free_port()
    upstream = FakeUpstream(f"http://127.0.0.1:{port}", "city-at-fake")
    with ThreadServer(upstream.app, port):
        city.core.federation.upstreams.add(slug=FAKE, name="Fake", issuer=upstream.issuer, client_id="city-at-fake",
                                           client_secret="s3cret-s3cret", may_create=True, algorithms=["ES256"])
        yield upstream


def cli_env(provider: Provider) -> dict[str, str]:
    """The settings a `yihao` command needs to act on this provider's deployment."""
    settings = provider.core.settings
    return {"YIHAO_DATABASE_URL": settings.database_url, "YIHAO_MASTER_KEY": settings.master_key,
            "YIHAO_VAR_DIR": str(settings.var_dir), "YIHAO_ISSUER": settings.issuer}
