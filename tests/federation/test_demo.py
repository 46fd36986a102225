"""`make serve`'s demo province: the city's login page offers it, and its verified citizen reaches the demo RP."""
from __future__ import annotations

from pathlib import Path
from urllib.parse import urljoin

import pytest

from federation import demo
from idp.app import create_app
from idp.core import build_core
from idp.demo import seed_demo
from realname.pii import IdNumber
from tests.conftest import Backend, make_settings
from tests.federation.conftest import answer_consents, is_consent_page, upstream_button
from tests.live import ThreadServer, free_port
from tests.rp import Browser


def _two_free_ports() -> int:
    """A port whose next port is free too: the demo province listens on the next one."""
    import socket

    while True:
        port = free_port()
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port


def test_the_demo_offers_the_province_and_its_citizen_signs_in(tmp_path: Path) -> None:
    port = _two_free_ports()
    settings = make_settings(Backend("sqlite", f"sqlite:///{tmp_path / 'yihao.db'}", None), tmp_path,
                             YIHAO_BIND=f"127.0.0.1:{port}", YIHAO_ISSUER=f"http://127.0.0.1:{port}", YIHAO_DEMO="true")
    core = build_core(settings, migrate=True)
    seed_demo(core)
    province = demo.start_province(settings)
    browser = Browser()
    try:
        with ThreadServer(create_app(settings, core), port):
            page = browser.follow(browser.get(settings.issuer + "/demo/login"), "never")
            assert "省统一身份认证平台" in page.text
            start = urljoin(str(page.url), upstream_button(page.text, demo.SLUG))
            # consent at the province (the whole ID number), then at the city (the demo RP)
            page = browser.login(start, province.username, province.password, stop_at="never", consent=None)
            assert is_consent_page(page) and "您的完整公民身份号码" in page.text
            done = answer_consents(browser, page, "never")
            assert done.status_code == 200 and 'id="id-token-claims"' in done.text
        assert core.identities.find_person(IdNumber.parse(demo.ID_NUMBER)) is not None  # linked, verified L2
    finally:
        browser.close()
        province.stop()
        core.close()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # uvicorn exits its thread
def test_a_province_whose_port_is_taken_fails_the_start_at_once(tmp_path: Path) -> None:
    """`make serve` goes on without the province when its port (the city's + 1) is taken, and must not
    spend its own start-up waiting for a server that already gave up."""
    import socket
    import time

    port = _two_free_ports()
    settings = make_settings(Backend("sqlite", f"sqlite:///{tmp_path / 'yihao.db'}", None), tmp_path,
                             YIHAO_BIND=f"127.0.0.1:{port}", YIHAO_ISSUER=f"http://127.0.0.1:{port}", YIHAO_DEMO="true")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port + 1))
        taken.listen()
        started = time.monotonic()
        with pytest.raises(RuntimeError, match="port"):
            demo.start_province(settings)
        assert time.monotonic() - started < 20  # the wait for a live province is 30 s
