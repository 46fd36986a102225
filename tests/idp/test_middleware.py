"""The edge middleware, seen from a client of a tiny inline app."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from idp.logs import JsonFormatter, configure_logging
from idp.metrics import render_metrics
from idp.middleware.edge import Document, Edge

pytestmark = pytest.mark.anyio
MAX_BYTES = 1024
FORM_POST_CSP = "default-src 'none'; form-action https://rp.example/cb"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def item(request: Request) -> Response:
    item_id, request_id = request.path_params["item_id"], request.state.request_id
    return JSONResponse({"item_id": item_id, "request_id": request_id})


async def echo(request: Request) -> Response:
    return PlainTextResponse(str(len(await request.body())))


async def form_post(request: Request) -> Response:
    page = "<form method=post action=https://rp.example/cb>"
    return HTMLResponse(page, headers={"Content-Security-Policy": FORM_POST_CSP})


def make_app(*, hsts: bool = False) -> Starlette:
    routes = [
        Route("/items/{item_id}", item),
        Route("/echo", echo, methods=["POST"]),
        Route("/form_post", form_post),
    ]
    middleware = [Middleware(Edge, hsts=hsts, max_bytes=MAX_BYTES)]
    return Starlette(routes=routes, middleware=middleware)


DOC_MEDIA, DOC_CACHE = "application/jwk-set+json", "public, max-age=60"


def document_app(current: list[bytes | None]) -> Starlette:
    """/doc is a document whose bytes the edge may hold (current[0]); its route says who answered."""

    async def route(request: Request) -> Response:
        return Response(b"from the route", media_type=DOC_MEDIA, headers={"Cache-Control": DOC_CACHE})

    documents = {"/doc": Document(lambda: current[0], DOC_MEDIA, DOC_CACHE)}
    return Starlette(routes=[Route("/doc", route)],
                     middleware=[Middleware(Edge, hsts=True, max_bytes=MAX_BYTES, documents=documents)])


def client(app: Starlette) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


@pytest.fixture
def access_lines() -> Iterator[io.StringIO]:
    """Capture yihao.access through JsonFormatter at emit time (while the request id is bound)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("yihao.access")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(old_level)


async def test_responses_carry_the_security_headers() -> None:
    async with client(make_app()) as c:
        response = await c.get("/items/1")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cross-origin-opener-policy"] == "same-origin"
    assert response.headers["content-security-policy"] == (
        "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
    )


async def test_hsts_is_absent_unless_enabled() -> None:
    async with client(make_app(hsts=False)) as c:
        assert "strict-transport-security" not in (await c.get("/items/1")).headers
    async with client(make_app(hsts=True)) as c:
        hsts = (await c.get("/items/1")).headers["strict-transport-security"]
    assert hsts == "max-age=31536000; includeSubDomains"


async def test_a_handlers_own_csp_is_kept() -> None:
    async with client(make_app()) as c:
        response = await c.get("/form_post")
    assert response.headers.get_list("content-security-policy") == [FORM_POST_CSP]


async def test_a_request_id_is_generated_and_echoed() -> None:
    async with client(make_app()) as c:
        response = await c.get("/items/1")
    request_id = response.headers["x-request-id"]
    assert len(request_id) == 32 and int(request_id, 16) >= 0
    assert response.json()["request_id"] == request_id


async def test_a_valid_inbound_request_id_is_kept() -> None:
    async with client(make_app()) as c:
        response = await c.get("/items/1", headers={"X-Request-ID": "lb-7f3a.2_x"})
    assert response.headers["x-request-id"] == "lb-7f3a.2_x"


@pytest.mark.parametrize("inbound", ["abc\nforged: 1", "a" * 200, "a b", "<script>"])
async def test_a_malformed_inbound_request_id_is_replaced(inbound: str) -> None:
    async with client(make_app()) as c:
        response = await c.get("/items/1", headers={"X-Request-ID": inbound})
    assert response.headers["x-request-id"] != inbound
    assert len(response.headers["x-request-id"]) == 32


async def test_the_access_log_line_is_json_with_the_path_but_not_the_query(
    access_lines: io.StringIO,
) -> None:
    async with client(make_app()) as c:
        response = await c.get("/items/42?code=SECRETCODE&state=xyz")
    line = json.loads(access_lines.getvalue().splitlines()[-1])
    assert {k: line[k] for k in ("logger", "method", "path", "status")} == {
        "logger": "yihao.access", "method": "GET", "path": "/items/42", "status": 200,
    }
    assert line["request_id"] == response.headers["x-request-id"]
    assert "SECRETCODE" not in access_lines.getvalue()


async def test_metrics_label_the_route_template_not_the_raw_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    async with client(make_app()) as c:
        await c.get("/items/42")
    text = render_metrics().decode()
    assert 'yihao_http_requests_total{method="GET",route="/items/{item_id}",status="200"}' in text
    assert "/items/42" not in text


async def test_metrics_label_an_unknown_path_as_unmatched(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    async with client(make_app()) as c:
        await c.get("/no/such/path-123")
    text = render_metrics().decode()
    assert 'yihao_http_requests_total{method="GET",route="<unmatched>",status="404"}' in text
    assert "path-123" not in text


def test_multiprocess_metrics_aggregate_every_workers_files(tmp_path: Path) -> None:
    # prometheus_client picks its file-backed values at import, so this runs in fresh interpreters.
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    worker = "from idp.metrics import LOGINS; LOGINS.labels(outcome='success').inc()"
    for _ in range(2):
        subprocess.run([sys.executable, "-c", worker], env=env, check=True)
    scrape = "from idp.metrics import render_metrics; print(render_metrics().decode())"
    run = subprocess.run([sys.executable, "-c", scrape], env=env, check=True, capture_output=True, text=True)
    text = run.stdout
    assert 'yihao_logins_total{outcome="success"} 2.0' in text


async def test_a_large_content_length_gets_413() -> None:
    async with client(make_app()) as c:
        response = await c.post("/echo", content=b"x" * (MAX_BYTES + 1))
    assert response.status_code == 413
    assert response.json() == {"error": "invalid_request", "error_description": "request body too large"}


async def test_a_large_chunked_body_gets_413() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(4):
            yield b"x" * 512

    async with client(make_app()) as c:
        response = await c.post("/echo", content=chunks())
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert response.json()["error"] == "invalid_request"


async def test_a_normal_size_body_passes() -> None:
    async with client(make_app()) as c:
        response = await c.post("/echo", content=b"x" * MAX_BYTES)
    assert response.status_code == 200
    assert response.text == str(MAX_BYTES)


def test_json_formatter_logs_the_exception_type_not_the_traceback() -> None:
    try:
        raise ValueError("bad client_id")
    except ValueError:
        exc_info = sys.exc_info()
    record = logging.getLogger("yihao.test").makeRecord(
        "yihao.test", logging.ERROR, __file__, 1, "token failed", (), exc_info, extra={"client_id": "rp1"}
    )
    line = json.loads(JsonFormatter().format(record))
    assert (line["msg"], line["exc_type"], line["exc"], line["client_id"]) == (
        "token failed", "ValueError", "ValueError: bad client_id", "rp1",
    )
    assert "Traceback" not in json.dumps(line)


def test_a_database_error_is_logged_by_its_class_and_code_never_by_the_values_it_quotes() -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import IntegrityError

    engine = create_engine("sqlite://")  # without hide_parameters: the message quotes them
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE person (name TEXT UNIQUE)"))
        connection.execute(text("INSERT INTO person VALUES (:n)"), {"n": "350102199001011234"})
    try:
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO person VALUES (:n)"), {"n": "350102199001011234"})
    except IntegrityError:
        exc_info = sys.exc_info()
    record = logging.getLogger("yihao.test").makeRecord("yihao.test", logging.ERROR, __file__, 1, "fault", (),
                                                       exc_info)
    line = json.loads(JsonFormatter().format(record))
    assert "350102199001011234" not in json.dumps(line) and "person" not in line["exc"]
    assert line["exc_type"] == "IntegrityError"
    assert line["exc"] == "IntegrityError from IntegrityError (code SQLITE_CONSTRAINT_UNIQUE): message withheld"


def test_configure_logging_twice_installs_one_handler() -> None:
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    try:
        configure_logging()
        configure_logging("DEBUG")
        json_handlers = [h for h in root.handlers if isinstance(h.formatter, JsonFormatter)]
        assert len(json_handlers) == 1
        assert logging.getLogger("uvicorn.error").handlers == [] and logging.getLogger("uvicorn.error").propagate
    finally:
        root.handlers[:] = before
        root.setLevel(level)


async def test_a_document_is_answered_from_memory_with_its_routes_headers() -> None:
    current: list[bytes | None] = [b'{"keys":[]}']
    async with client(document_app(current)) as c:
        from_memory = await c.get("/doc", headers={"X-Request-ID": "abc-123"})
        current[0] = None  # the bytes are not at hand: the route answers
        from_route = await c.get("/doc", headers={"X-Request-ID": "abc-123"})
    assert from_memory.content == b'{"keys":[]}' and from_route.content == b"from the route"
    for response in (from_memory, from_route):
        assert response.status_code == 200
        assert response.headers["content-type"] == DOC_MEDIA
        assert response.headers["cache-control"] == DOC_CACHE
        assert response.headers["x-request-id"] == "abc-123"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["strict-transport-security"].startswith("max-age=")
    assert from_memory.headers["content-length"] == str(len(b'{"keys":[]}'))
    names = lambda r: sorted(k for k in r.headers.keys() if k != "content-length")  # noqa: E731
    assert names(from_memory) == names(from_route)


async def test_a_document_answers_get_and_head_only() -> None:
    async with client(document_app([b"doc"])) as c:
        head = await c.head("/doc")
        post = await c.post("/doc")
    assert head.status_code == 200 and head.headers["content-length"] == "3"
    assert post.status_code == 405  # the route's answer: documents are read-only


async def test_documents_are_counted_and_logged_like_routes(access_lines: io.StringIO) -> None:
    before = render_metrics()
    async with client(document_app([b"doc"])) as c:
        await c.get("/doc")
    line = json.loads(access_lines.getvalue().strip().splitlines()[-1])
    assert line["path"] == "/doc" and line["status"] == 200 and line["request_id"]
    assert before != render_metrics() and b'route="/doc"' in render_metrics()
