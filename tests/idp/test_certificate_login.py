"""Enterprise and person login with USB-key certificates from several CAs, through a real RP."""
from __future__ import annotations

import base64
import datetime as dt
import io
import json
import random
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urljoin

import httpx
import pytest
from sqlalchemy import text

from idp import events
from idp.pki.truststore import CaProfile
from realname.pii import CreditCode, IdNumber
from realname.registry.importer import Importer
from realname.testdata import make_credit_code, make_id_number
from tests.idp.conftest import Person, Provider, RpFactory
from tests.pki import ID_OID, USCC_OID, Ca, CrlServer, Issued, root
from tests.rp import Browser, RelyingParty, callback_params, parse_form

rng = random.Random()


@dataclass
class Cas:
    sm2_root: Ca
    sm2_sub: Ca  # chain of 2: leaf → SM2 intermediate → SM2 root (trusted)
    rsa: Ca
    crls: CrlServer
    tag: str

    def crl_url(self, ca: Ca) -> str:
        return f"{self.crls.url}/crl/{ca.certificate.serial_number:x}.crl"

    def publish(self, ca: Ca, **kwargs: Any) -> None:
        self.crls.files[f"{ca.certificate.serial_number:x}.crl"] = ca.crl(**kwargs)


@pytest.fixture(scope="module")
def cas(provider: Provider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cas]:
    work = tmp_path_factory.mktemp("cas")
    with CrlServer() as crls:
        sm2_root = root("国密测试根CA", "sm2", work)
        found = Cas(sm2_root, sm2_root, root("RSA Test Enterprise CA", "rsa", work), crls, uuid.uuid4().hex[:6])
        found.sm2_sub = sm2_root.issue("国密测试企业CA", ca=True, path_length=0, crl_url=found.crl_url(sm2_root))
        provider.core.trust.add(f"sm2-{found.tag}", sm2_root.pem, CaProfile())
        provider.core.trust.add(f"rsa-{found.tag}", found.rsa.pem, CaProfile())
        for ca in (sm2_root, found.sm2_sub, found.rsa):
            found.publish(ca)
        yield found


def enterprise(provider: Provider, status: str = "active") -> str:
    code = make_credit_code(rng)
    csv = f"credit_code,name,legal_representative,status\n{code},某某科技有限公司{code[-4:]},张三,{status}\n"
    Importer(provider.core.engine, provider.core.vault).run(io.StringIO(csv), kind="entities")
    return code


def leaf(cas: Cas, ca: Ca, *, code: str | None = None, **kwargs: Any) -> Issued:
    strings = kwargs.pop("strings", {USCC_OID: code} if code else {})
    return ca.issue("某某科技有限公司", strings=strings, crl_url=cas.crl_url(ca), **kwargs)


def certificate_page(browser: Browser, rp: RelyingParty) -> tuple[httpx.Response, Any]:
    auth = rp.authorization()
    login = browser.follow(browser.get(auth.url), rp.redirect_uri)
    uid_path = parse_form(login.text)["action"].rsplit("/", 1)[0]
    page = browser.get(urljoin(str(login.url), uid_path + "/certificate"))
    assert page.status_code == 200
    return page, auth


def post(browser: Browser, page: httpx.Response, *, certificate: str, signature: str, chain: str = "",
         challenge: str | None = None, headers: dict[str, str] | None = None) -> httpx.Response:
    form = parse_form(page.text)
    data = {"csrf_token": form["csrf_token"], "challenge": challenge or form["challenge"], "certificate": certificate,
            "signature": signature, "chain": chain}
    return browser.http.post(urljoin(str(page.url), form["action"]), data=data, headers=headers or {})


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def sign_in(browser: Browser, rp: RelyingParty, cert: Issued, chain: tuple[Issued, ...] = (), *,
            raw: bool = False) -> httpx.Response:
    """The page's part of the protocol: the agent signs the challenge, the page posts the result."""
    page, auth = certificate_page(browser, rp)
    challenge = parse_form(page.text)["challenge"]
    response = post(browser, page, certificate=b64(cert.der), signature=b64(cert.sign(challenge.encode(), raw=raw)),
                    chain="\n".join(b64(c.der) for c in chain))
    response.auth = auth  # type: ignore[attr-defined]
    return response


def id_token(browser: Browser, rp: RelyingParty, response: httpx.Response) -> dict[str, Any]:
    code = callback_params(browser.follow(response, rp.redirect_uri))["code"]
    auth = response.auth  # type: ignore[attr-defined]
    body = rp.fetch_token(code, auth.verifier)
    return rp.validate_id_token(body["id_token"], auth.nonce, body["access_token"])


def refusal(response: httpx.Response) -> str | None:
    marker = 'id="cert-error" data-code="cert.refused.'
    start = response.text.find(marker)
    return None if start < 0 else response.text[start + len(marker):].split('"', 1)[0]


def last_refusal(provider: Provider) -> dict[str, Any]:
    events.flush()
    with provider.core.engine.connect() as connection:
        details = connection.execute(text("SELECT details FROM audit_event WHERE event = 'certificate.refused' "
                                          "ORDER BY id DESC LIMIT 1")).scalar()
    return details if isinstance(details, dict) else json.loads(details)


# -- 多证互认: two CAs, one enterprise account --------------------------------------------------------

def test_an_enterprise_logs_in_with_sm2_from_one_ca_and_rsa_from_another_into_one_account(
        provider: Provider, cas: Cas, make_rp: RpFactory, browser: Browser) -> None:
    code = enterprise(provider)
    rp = make_rp(first_party=True)
    sm2_leaf = leaf(cas, cas.sm2_sub, code=code)
    first = id_token(browser, rp, sign_in(browser, rp, sm2_leaf, (cas.sm2_sub,)))
    second = id_token(Browser(), rp, sign_in(Browser(), rp, leaf(cas, cas.rsa, code=code)))
    assert first["sub"] == second["sub"]
    assert (first["acr"], first["amr"]) == ("loa/4", ["hwk", "pin"])
    account = provider.core.identities.find_enterprise(CreditCode(code))
    with provider.core.engine.connect() as connection:
        rows = connection.execute(text("SELECT serial, identifier_masked FROM certificate_binding "
                                       "WHERE account_id = :a"), {"a": account}).all()
    assert len(rows) == 2 and {r[1] for r in rows} == {code[:4] + "*" * 10 + code[-4:]}


def test_a_renewed_certificate_and_a_raw_r_s_signature_reach_the_same_account(
        provider: Provider, cas: Cas, make_rp: RpFactory) -> None:
    code = enterprise(provider)
    rp = make_rp(first_party=True)
    subs = {id_token(b, rp, sign_in(b, rp, leaf(cas, cas.sm2_sub, code=code), (cas.sm2_sub,), raw=True))["sub"]
            for b in (Browser(), Browser())}
    assert len(subs) == 1


def test_a_person_certificate_logs_into_the_account_holding_its_id_number(
        provider: Provider, cas: Cas, make_rp: RpFactory, person: Person, browser: Browser) -> None:
    number = make_id_number(rng)
    provider.core.identities.bind_person(person.id, IdNumber.parse(number), level=2, source="test")
    rp = make_rp(first_party=True)
    claims = id_token(browser, rp, sign_in(browser, rp, leaf(cas, cas.rsa, strings={ID_OID: number})))
    assert claims["acr"] == "loa/4"  # the CA's level (in-person registration) raised the identity to L4
    assert provider.core.identities.level(person.id) == 4


# -- every refusal: a page in both languages and an audit event ---------------------------------------

@pytest.mark.parametrize("case", ["untrusted_ca", "expired", "not_yet_valid", "key_usage", "no_identifier",
                                  "identifier_invalid", "registry_refused", "chain_invalid"])
def test_a_certificate_that_cannot_log_in_is_refused_with_its_reason(
        provider: Provider, cas: Cas, make_rp: RpFactory, browser: Browser, tmp_path: Path, case: str) -> None:
    code = enterprise(provider)
    chain: tuple[Issued, ...] = ()
    if case == "untrusted_ca":
        cert = root("Unknown CA", "rsa", tmp_path).issue("x", strings={USCC_OID: code})
    elif case == "expired":
        cert = leaf(cas, cas.rsa, code=code, not_before=_ago(40), days=30)
    elif case == "not_yet_valid":
        cert = leaf(cas, cas.rsa, code=code, not_before=_ago(-3))
    elif case == "key_usage":  # the encryption certificate of an SM2 key pair
        cert, chain = leaf(cas, cas.sm2_sub, code=code, usage=("keyEncipherment",)), (cas.sm2_sub,)
    elif case == "no_identifier":
        cert = leaf(cas, cas.rsa)
    elif case == "identifier_invalid":
        cert = leaf(cas, cas.rsa, code=code[:-1] + ("0" if code[-1] != "0" else "1"))
    elif case == "registry_refused":
        cert = leaf(cas, cas.rsa, code=enterprise(provider, status="revoked"))
    else:  # an end-entity certificate posing as an intermediate CA
        end_entity = cas.sm2_sub.issue("End entity")
        posing = Ca(end_entity.certificate, end_entity.key, end_entity.algorithm, end_entity.workdir)
        cert, chain = posing.issue("x", strings={USCC_OID: code}), (cas.sm2_sub, end_entity)
    response = sign_in(browser, make_rp(first_party=True), cert, chain)
    assert response.status_code == 403 and refusal(response) == case
    assert last_refusal(provider)["reason"] == case


def _ago(days: int) -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=days)


def test_a_signature_over_another_challenge_is_refused(provider: Provider, cas: Cas, make_rp: RpFactory,
                                                       browser: Browser) -> None:
    cert = leaf(cas, cas.rsa, code=enterprise(provider))
    page, _ = certificate_page(browser, make_rp(first_party=True))
    other = parse_form(page.text)["challenge"].replace("yihao-login|", "yihao-login|x")
    response = post(browser, page, certificate=b64(cert.der), signature=b64(cert.sign(other.encode())))
    assert response.status_code == 400 and refusal(response) == "signature_invalid"
    assert last_refusal(provider)["reason"] == "signature_invalid"


def test_a_challenge_is_single_use(provider: Provider, cas: Cas, make_rp: RpFactory, browser: Browser) -> None:
    cert = leaf(cas, cas.rsa, code=enterprise(provider))
    page, _ = certificate_page(browser, make_rp(first_party=True))
    challenge = parse_form(page.text)["challenge"]
    wrong = post(browser, page, certificate=b64(cert.der), signature=b64(cert.sign(b"something else")))
    assert refusal(wrong) == "signature_invalid"
    replay = post(browser, page, certificate=b64(cert.der), signature=b64(cert.sign(challenge.encode())))
    assert replay.status_code == 400 and refusal(replay) == "challenge_invalid"
    assert last_refusal(provider)["detail"] == "unknown, used or expired"


def test_a_challenge_from_another_browser_or_origin_is_refused(provider: Provider, cas: Cas, make_rp: RpFactory,
                                                               browser: Browser) -> None:
    cert = leaf(cas, cas.rsa, code=enterprise(provider))
    rp = make_rp(first_party=True)
    page, _ = certificate_page(browser, rp)
    stolen = parse_form(page.text)["challenge"]
    other_page, _ = certificate_page(Browser(), rp)
    response = post(browser, page, challenge=parse_form(other_page.text)["challenge"], certificate=b64(cert.der),
                    signature=b64(cert.sign(parse_form(other_page.text)["challenge"].encode())))
    assert refusal(response) == "challenge_invalid"
    fresh = parse_form(response.text)["challenge"]
    assert fresh != stolen
    response = post(browser, response, certificate=b64(cert.der), signature=b64(cert.sign(fresh.encode())),
                    headers={"Origin": "https://evil.example"})
    assert refusal(response) == "challenge_invalid"
    assert last_refusal(provider)["detail"] == "posted from another origin"


@pytest.mark.parametrize("field, value, code", [("certificate", "bm90IGEgY2VydGlmaWNhdGU=", "malformed_certificate"),
                                                ("certificate", "%%%", "malformed_certificate"),
                                                ("signature", "!!", "malformed_signature")])
def test_malformed_input_is_refused_without_a_server_error(provider: Provider, cas: Cas, make_rp: RpFactory,
                                                           browser: Browser, field: str, value: str, code: str) -> None:
    cert = leaf(cas, cas.rsa, code=enterprise(provider))
    page, _ = certificate_page(browser, make_rp(first_party=True))
    sent = {"certificate": b64(cert.der), "signature": b64(cert.sign(parse_form(page.text)["challenge"].encode()))}
    sent[field] = value
    response = post(browser, page, **sent)
    assert response.status_code == 400 and refusal(response) == code


@pytest.mark.parametrize("ui_locales, message", [("en", "The certificate could not be read."),
                                                 ("zh-CN", "无法读取该证书。")])
def test_refusals_read_in_both_languages(make_rp: RpFactory, browser: Browser, ui_locales: str, message: str) -> None:
    rp = make_rp(first_party=True)
    login = browser.follow(browser.get(rp.authorization(ui_locales=ui_locales).url), rp.redirect_uri)
    page = browser.get(urljoin(str(login.url), parse_form(login.text)["action"].rsplit("/", 1)[0] + "/certificate"))
    response = post(browser, page, certificate="AAAA", signature="AAAA")
    assert f'data-code="cert.refused.malformed_certificate">{message}</p>' in response.text


# -- revocation by CRL ------------------------------------------------------------------------------

@pytest.mark.parametrize("algorithm", ["sm2", "rsa"])
def test_a_revoked_certificate_is_refused_and_the_crl_is_cached(provider: Provider, cas: Cas, make_rp: RpFactory,
                                                                 browser: Browser, tmp_path: Path, algorithm: str) -> None:
    if algorithm == "sm2":  # a new intermediate under the trusted SM2 root, so its CRL is new too
        ca = cas.sm2_root.issue("国密吊销测试CA", ca=True, crl_url=cas.crl_url(cas.sm2_root))
        chain: tuple[Issued, ...] = (ca,)
    else:
        ca = root("RSA Revocation CA", "rsa", tmp_path)
        provider.core.trust.add(f"rsa-revocation-{uuid.uuid4().hex[:6]}", ca.pem, CaProfile())
        chain = ()
    code = enterprise(provider)
    good, bad = leaf(cas, ca, code=code), leaf(cas, ca, code=code)
    ca.revoked.append(bad.certificate.serial_number)
    cas.publish(ca)
    rp = make_rp(first_party=True)
    assert sign_in(browser, rp, good, chain).status_code == 303
    fetched = cas.crls.fetches
    response = sign_in(Browser(), rp, bad, chain)
    assert response.status_code == 403 and refusal(response) == "revoked"
    assert last_refusal(provider)["reason"] == "revoked"
    assert cas.crls.fetches == fetched  # cached until nextUpdate, not fetched per login


@pytest.mark.parametrize("max_stale, outcome", [(0, "revocation_unknown"), (600, None)])
def test_a_crl_that_cannot_be_fetched_follows_the_ca_policy(provider: Provider, make_rp: RpFactory,
                                                            tmp_path: Path, max_stale: int, outcome: str | None) -> None:
    ca = root(f"Policy CA {max_stale}", "ecdsa", tmp_path)
    provider.core.trust.add(f"policy-{max_stale}-{uuid.uuid4().hex[:6]}", ca.pem, CaProfile(crl_max_stale=max_stale))
    code = enterprise(provider)
    with CrlServer() as crls:
        url = f"{crls.url}/crl/policy.crl"
        crls.files["policy.crl"] = ca.crl(next_update=dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=2))
        cert = ca.issue("x", strings={USCC_OID: code}, crl_url=url)
        rp = make_rp(first_party=True)
        assert sign_in(Browser(), rp, cert).status_code == 303  # fetched, cached
        crls.fail = True
        time.sleep(2.5)  # past nextUpdate: a fresh CRL is needed and cannot be had
        response = sign_in(Browser(), rp, cert)
    assert refusal(response) == outcome
    assert response.status_code == (403 if outcome else 303)
    unreachable = ca.issue("y", strings={USCC_OID: code}, crl_url="http://127.0.0.1:9/none.crl")
    assert refusal(sign_in(Browser(), rp, unreachable)) == "revocation_unknown"  # nothing cached: fail closed


def test_repeated_bad_signatures_from_one_address_are_throttled(provider: Provider, tmp_path: Path) -> None:
    from tests.idp.conftest import serve_provider

    with serve_provider(provider.backend, tmp_path, YIHAO_THROTTLE_ADDRESS_FAILURES="2") as strict:
        client, _ = strict.core.clients.create(name="RP", redirect_uris=["https://rp.example.gov.cn/cb"],
                                               first_party=True)
        rp = RelyingParty(strict.url, client.client_id, None, "https://rp.example.gov.cn/cb")
        browser = Browser()
        page, _ = certificate_page(browser, rp)
        statuses = []
        for _ in range(3):
            page = post(browser, page, certificate="AAAA", signature="AAAA")
            statuses.append(page.status_code)
    assert statuses == [400, 429, 429] and int(page.headers["retry-after"]) > 0
    assert refusal(page) is None and 'data-code="login.locked"' in page.text


@pytest.mark.parametrize("proxies, believed", [("127.0.0.0/8", True), ("10.9.9.9", False)])
def test_mutual_tls_at_a_trusted_proxy_logs_in_with_the_forwarded_certificate(
        provider: Provider, cas: Cas, tmp_path: Path, proxies: str, believed: bool) -> None:
    from urllib.parse import quote

    from tests.idp.conftest import serve_provider

    code = enterprise(provider)
    cert = leaf(cas, cas.rsa, code=code)
    with serve_provider(provider.backend, tmp_path, YIHAO_MTLS_PROXIES=proxies) as behind_proxy:
        client, secret = behind_proxy.core.clients.create(name="RP", redirect_uris=["https://rp.example.gov.cn/cb"],
                                                          first_party=True)
        rp = RelyingParty(behind_proxy.url, client.client_id, secret, "https://rp.example.gov.cn/cb")
        browser = Browser()
        browser.http.headers["X-SSL-Client-Cert"] = quote(cert.pem.decode())  # nginx: $ssl_client_escaped_cert
        page, auth = certificate_page(browser, rp)
        assert ('id="cert-tls"' in page.text) is believed
        form = parse_form(page.text)
        response = browser.http.post(urljoin(str(page.url), form["action"]),
                                     data={"csrf_token": form["csrf_token"], "method": "tls"})
        if believed:
            response.auth = auth  # type: ignore[attr-defined]
            claims = id_token(browser, rp, response)
            assert (claims["amr"], claims["acr"]) == (["sc"], "loa/4")
        else:  # the header came from an address that is not a configured proxy: ignored
            assert refusal(response) == "malformed_certificate"
