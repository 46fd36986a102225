"""The reference signing agent speaks the documented protocol; a login runs through it end to end."""
from __future__ import annotations

import uuid
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from idp.agent import Agent, load_entry
from idp.pki.truststore import CaProfile
from tests.idp.conftest import Provider, RpFactory
from tests.idp.test_certificate_login import certificate_page, enterprise, id_token, post, refusal
from tests.live import ThreadServer, free_port
from tests.pki import USCC_OID, Issued, root
from tests.rp import Browser, parse_form


@pytest.fixture(scope="module")
def keys(provider: Provider, tmp_path_factory: pytest.TempPathFactory) -> tuple[Issued, Issued]:
    work = tmp_path_factory.mktemp("agent")
    sm2, rsa = root("Agent SM2 CA", "sm2", work), root("Agent RSA CA", "rsa", work)
    tag = uuid.uuid4().hex[:6]
    provider.core.trust.add(f"agent-sm2-{tag}", sm2.pem, CaProfile(revocation="none"))
    provider.core.trust.add(f"agent-rsa-{tag}", rsa.pem, CaProfile(revocation="none"))
    code = enterprise(provider)
    return (sm2.issue("代理测试企业", strings={USCC_OID: code}), rsa.issue("代理测试企业", strings={USCC_OID: code}))


@pytest.fixture
def agent(provider: Provider, keys: tuple[Issued, Issued]) -> Iterator[str]:
    entries = [load_entry(k.key_pem(), k.pem) for k in keys]  # key files, as `yihao agent --identity` reads them
    with ThreadServer(Agent(entries, "123456", (provider.url,)).app(), free_port()) as server:  # type: ignore[arg-type]
        yield server.url


def sign_through_agent(agent: str, origin: str, challenge: str, index: int, pin: str = "123456") -> httpx.Response:
    listed = httpx.get(f"{agent}/v1/certificates", headers={"Origin": origin}).json()["certificates"]
    return httpx.post(f"{agent}/v1/sign", headers={"Origin": origin},
                      json={"id": listed[index]["id"], "data": challenge, "pin": pin})


def test_one_enterprise_signs_in_with_both_of_its_certificates_through_the_agent(
        provider: Provider, agent: str, make_rp: RpFactory) -> None:
    rp = make_rp(first_party=True)
    subs = []
    for index, algorithm in enumerate(("sm2-sm3", "rsa-pkcs1-sha256")):
        browser = Browser()
        page, auth = certificate_page(browser, rp)
        assert f"connect-src 'self' {agent.rsplit(':', 1)[0]}" in page.headers["content-security-policy"]
        signed = sign_through_agent(agent, provider.url, parse_form(page.text)["challenge"], index)
        assert signed.status_code == 200 and signed.json()["algorithm"] == algorithm
        assert signed.headers["access-control-allow-origin"] == provider.url
        response = post(browser, page, certificate=signed.json()["certificate"], signature=signed.json()["signature"],
                        chain="\n".join(signed.json()["chain"]))
        response.auth = auth  # type: ignore[attr-defined]
        claims = id_token(browser, rp, response)
        subs.append(claims["sub"])
        assert claims["amr"] == ["hwk", "pin"]
    assert subs[0] == subs[1]


def test_the_agent_answers_only_allowed_origins_and_signs_only_their_challenges(provider: Provider, agent: str) -> None:
    evil = "https://evil.example"
    assert httpx.get(f"{agent}/v1/certificates", headers={"Origin": evil}).status_code == 403
    preflight = httpx.options(f"{agent}/v1/sign", headers={"Origin": provider.url,
                                                           "Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 204 and preflight.headers["access-control-allow-private-network"] == "true"
    relayed = sign_through_agent(agent, provider.url, f"yihao-login|{'n' * 32}|{evil}|1", 0)
    assert relayed.status_code == 400 and relayed.json()["error"] == "challenge_origin_mismatch"
    assert sign_through_agent(agent, provider.url, "sign this contract", 0).status_code == 400


def test_a_wrong_pin_is_refused_by_the_agent_and_nothing_reaches_the_server(
        provider: Provider, agent: str, make_rp: RpFactory) -> None:
    page, _ = certificate_page(Browser(), make_rp(first_party=True))
    wrong = sign_through_agent(agent, provider.url, parse_form(page.text)["challenge"], 0, pin="000000")
    assert wrong.status_code == 403 and wrong.json() == {"error": "pin_incorrect", "tries_left": 4}


def test_an_agent_signature_for_another_sign_in_is_refused(provider: Provider, agent: str, make_rp: RpFactory) -> None:
    rp = make_rp(first_party=True)
    mine, theirs = Browser(), Browser()
    page, _ = certificate_page(mine, rp)
    their_page, _ = certificate_page(theirs, rp)
    signed = sign_through_agent(agent, provider.url, parse_form(their_page.text)["challenge"], 1).json()
    response = post(mine, page, challenge=parse_form(their_page.text)["challenge"],
                    certificate=signed["certificate"], signature=signed["signature"])
    assert refusal(response) == "challenge_invalid"


def test_a_key_file_the_agent_cannot_use_is_an_error(tmp_path: Path) -> None:
    ca = root("x", "rsa", tmp_path)
    with pytest.raises(ValueError):
        load_entry(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", ca.pem)
    sm2 = root("y", "sm2", tmp_path)
    assert load_entry(sm2.key_pem(), sm2.pem).algorithm == "sm2"
