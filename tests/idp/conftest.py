"""A live provider per backend, and factories for the clients and accounts a test needs."""
from __future__ import annotations

import contextlib
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import anyio
import pytest

from idp import events
from idp.app import create_app
from idp.core import Core, build_core
from tests.conftest import Backend, make_settings
from tests.live import ThreadServer, free_port
from tests.rp import Browser, RelyingParty


@dataclass
class Provider:
    url: str
    core: Core
    backend: Backend


@contextlib.contextmanager
def serve_provider(backend: Backend, var_dir: Path, lifespan: str = "off", **overrides: str) -> Iterator[Provider]:
    """A provider on a free port; `lifespan="on"` also runs its background work (logout deliveries)."""
    port = free_port()
    settings = make_settings(backend, var_dir, YIHAO_ISSUER=f"http://127.0.0.1:{port}",
                             YIHAO_REDIS_PREFIX=f"yihao-test:{uuid.uuid4().hex}:", **overrides)
    core = build_core(settings, migrate=True)
    app = create_app(settings, core)
    with ThreadServer(app, port, lifespan) as server:
        yield Provider(server.url, core, backend)
    core.close()


@pytest.fixture(scope="session")
def provider(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    with serve_provider(backend, tmp_path_factory.mktemp("var")) as provider:
        yield provider


WorkerFactory = Callable[..., str]


@pytest.fixture
def another_worker(provider: Provider) -> Iterator[WorkerFactory]:
    """Start another worker of the same deployment (same issuer, database and store), perhaps with
    other settings; returns its URL. The in-process store is shared by handing it over, as one
    process would; Redis is reached through a connection of the worker's own."""
    stack: list[tuple[ThreadServer, Core]] = []

    def start(**changes: object) -> str:
        settings = provider.core.settings.replace(**changes)
        core = build_core(settings, store=None if provider.backend.production else provider.core.store)
        server = ThreadServer(create_app(settings, core), free_port()).__enter__()
        stack.append((server, core))
        return server.url

    yield start
    for server, core in stack:
        server.__exit__(None, None, None)
        if provider.backend.production:
            core.close()
        else:
            core.engine.dispose()


@dataclass
class Person:
    id: str
    username: str
    password: str


@pytest.fixture(autouse=True)
def _audit_of_the_provider_under_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """What a test does by calling the provider's core directly (not through a request, which binds
    its app's writer) is audited into that provider's table, not into the one built last in this
    process (the other backend's, say)."""
    if "provider" not in request.fixturenames:
        yield
        return
    with events.using(request.getfixturevalue("provider").core.audit):
        yield


@pytest.fixture
def person(provider: Provider) -> Person:
    username, password = f"p{uuid.uuid4().hex[:10]}", "correct horse battery"
    profile = provider.core.accounts.create(username, password, name="李四", email=f"{username}@example.gov.cn",
                                            email_verified=True)
    return Person(profile.id, username, password)


RpFactory = Callable[..., RelyingParty]


@pytest.fixture
def make_rp(provider: Provider) -> RpFactory:
    def make(*, public: bool = False, first_party: bool = False, redirect_uri: str | None = None,
             **metadata: str) -> RelyingParty:
        redirect = redirect_uri or f"https://rp-{uuid.uuid4().hex[:8]}.example.gov.cn/callback"
        client, secret = provider.core.clients.create(name="测试应用 Test RP", redirect_uris=[redirect],
                                                      public=public, first_party=first_party, **metadata)
        return RelyingParty(provider.url, client.client_id, secret, redirect)

    return make


@pytest.fixture
def browser() -> Iterator[Browser]:
    b = Browser()
    yield b
    b.close()


@dataclass
class Documents:
    """A web server on loopback serving what a test publishes: sector documents, logos, slow answers."""

    url: str
    pages: dict[str, tuple[int, bytes, float]]

    def publish(self, body: object, status: int = 200, delay: float = 0.0) -> str:
        path = f"/{uuid.uuid4().hex}.json"
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.pages[path] = (status, raw, delay)
        return self.url + path


@pytest.fixture(scope="session")
def documents() -> Iterator[Documents]:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    pages: dict[str, tuple[int, bytes, float]] = {}

    async def page(request: Request) -> Response:
        status, body, delay = pages.get(request.url.path, (404, b"", 0.0))
        if delay:
            await anyio.sleep(delay)
        return Response(body, status_code=status, media_type="application/json")

    app = Starlette(routes=[Route("/healthz", page), Route("/{name}", page)])
    pages["/healthz"] = (200, b"{}", 0.0)
    with ThreadServer(app, free_port()) as server:
        yield Documents(server.url, pages)
