"""The HTTP population registry against a real local service: answers, timeouts, 500s, outages.

A service that is down, slow or failing gives ``unavailable``, never ``mismatch``; the breaker
stops calling it after repeated failures and closes again once a probe succeeds.
"""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import pytest

from realname.pii import IdNumber
from realname.registry.http import CircuitBreaker, HttpPopulationRegistry
from tests.live import free_port

PEOPLE = {"350102199003070012": "张三"}
NUMBER = IdNumber.parse("350102199003070012")


class Service:
    """A tiny registry service in a thread; ``mode`` is ok | slow | error | garbage."""

    def __init__(self, port: int) -> None:
        self.mode = "ok"
        self.calls = 0
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                service.calls += 1
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if service.mode == "slow":
                    time.sleep(0.5)
                if service.mode == "error":
                    return self._send(500, b"{}")
                if service.mode == "garbage":
                    return self._send(200, b'{"result": "maybe"}')
                name = PEOPLE.get(body["id_number"])
                result = "not_found" if name is None else "match" if name == body["name"] else "mismatch"
                self._send(200, json.dumps({"result": result}).encode())

            def _send(self, status: int, payload: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Service:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def service(port: int) -> Iterator[Service]:
    with Service(port) as running:
        yield running


def _registry(port: int, *, failures: int = 3, cooldown: float = 0.3, retries: int = 2) -> HttpPopulationRegistry:
    return HttpPopulationRegistry(f"http://127.0.0.1:{port}", timeout=0.2, retries=retries, backoff=0.01,
                                  breaker=CircuitBreaker(failures, cooldown))


def test_the_service_answers_match_mismatch_and_not_found(service: Service, port: int) -> None:
    registry = _registry(port)
    assert registry.verify("张三", NUMBER).outcome == "match"
    assert registry.verify("李四", NUMBER).outcome == "mismatch"
    assert registry.verify("张三", IdNumber.parse("35010420000229002X")).outcome == "not_found"
    assert service.calls == 3  # a definite answer is never retried


def test_a_service_that_is_down_is_unavailable_after_the_retries(port: int) -> None:
    verdict = _registry(port).verify("张三", NUMBER)
    assert (verdict.outcome, verdict.detail) == ("unavailable", "connection")


def test_a_slow_service_times_out_as_unavailable_never_as_mismatch(service: Service, port: int) -> None:
    service.mode = "slow"
    verdict = _registry(port, retries=1).verify("李四", NUMBER)
    assert (verdict.outcome, verdict.detail) == ("unavailable", "timeout")
    assert service.calls == 2


def test_500s_are_retried_then_unavailable(service: Service, port: int) -> None:
    service.mode = "error"
    verdict = _registry(port, retries=2).verify("张三", NUMBER)
    assert (verdict.outcome, verdict.detail, service.calls) == ("unavailable", "http_500", 3)


def test_an_answer_that_is_not_a_verdict_is_unavailable_and_not_retried(service: Service, port: int) -> None:
    service.mode = "garbage"
    verdict = _registry(port).verify("张三", NUMBER)
    assert (verdict.outcome, verdict.detail, service.calls) == ("unavailable", "bad_response", 1)


def test_the_breaker_opens_after_consecutive_failures_and_stops_calling(service: Service, port: int) -> None:
    service.mode = "error"
    registry = _registry(port, failures=2, retries=0)
    registry.verify("张三", NUMBER)
    registry.verify("张三", NUMBER)
    assert registry.breaker.state == "open" and service.calls == 2
    verdict = registry.verify("张三", NUMBER)
    assert (verdict.outcome, verdict.detail, service.calls) == ("unavailable", "circuit_open", 2)


def test_the_breaker_probes_after_the_cool_down_and_closes_when_the_service_recovers(port: int) -> None:
    registry = _registry(port, failures=2, retries=0, cooldown=0.3)
    for _ in range(2):
        assert registry.verify("张三", NUMBER).detail == "connection"
    assert registry.verify("张三", NUMBER).detail == "circuit_open"
    with Service(port) as service:
        time.sleep(0.35)
        assert registry.verify("张三", NUMBER).outcome == "match"  # the half-open probe
        assert registry.breaker.state == "closed"
        assert registry.verify("李四", NUMBER).outcome == "mismatch"
        assert service.calls == 2


def test_a_failed_probe_opens_the_breaker_for_another_cool_down(service: Service, port: int) -> None:
    service.mode = "error"
    registry = _registry(port, failures=1, retries=0, cooldown=0.2)
    registry.verify("张三", NUMBER)
    time.sleep(0.25)
    assert registry.verify("张三", NUMBER).detail == "http_500"  # the probe
    assert registry.verify("张三", NUMBER).detail == "circuit_open"
    assert service.calls == 2


def test_settings_choose_the_http_registry_and_require_its_url() -> None:
    from idp.settings import ConfigError, load_settings
    from realname.registry import open_population_registry

    settings = load_settings({"YIHAO_POPULATION_REGISTRY": "http", "YIHAO_POPULATION_REGISTRY_URL": "https://gaj.example/api/"})
    registry = open_population_registry(settings, None, None)  # type: ignore[arg-type]
    assert isinstance(registry, HttpPopulationRegistry) and registry._url == "https://gaj.example/api/verify"
    with pytest.raises(ConfigError, match="^YIHAO_POPULATION_REGISTRY_URL: required when"):
        load_settings({"YIHAO_POPULATION_REGISTRY": "http"})
    with pytest.raises(ConfigError, match="^YIHAO_POPULATION_REGISTRY_URL: must use https"):
        load_settings({"YIHAO_POPULATION_REGISTRY_URL": "http://gaj.example"})
