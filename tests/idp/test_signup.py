"""Real-name sign-up and the L1 → L2 upgrade, as a person and a relying party see them."""
from __future__ import annotations

import json
import logging
import random
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select

from idp.models import Account, AuditEvent
from realname.pii import IdNumber
from realname.testdata import make_id_number
from tests.conftest import Backend
from tests.idp.conftest import Person, Provider, RpFactory, serve_provider
from tests.idp.realname_helpers import Citizen, outcome, registered_citizen, sign_up
from tests.live import free_port
from tests.rp import Browser, callback_params, parse_form

VERIFIED_NAME = json.dumps({"id_token": {"verified_claims": {"verification": {"trust_framework": None},
                                                              "claims": {"name": None}}}})


def _accounts(provider: Provider) -> int:
    with provider.core.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(Account)).scalar_one())


def test_a_citizen_in_the_registry_signs_up_at_l2_and_the_rp_sees_it(provider: Provider, make_rp: RpFactory,
                                                                      browser: Browser) -> None:
    citizen = registered_citizen(provider.core)
    rp = make_rp()
    auth = rp.authorization(claims=VERIFIED_NAME)
    page = sign_up(browser, auth.url, citizen, stop_at=rp.redirect_uri)
    assert parse_form(page.text)["action"].endswith("/consent")  # signed in; the flow goes on
    body = rp.fetch_token(callback_params(browser.consent(page, "approve", rp.redirect_uri))["code"], auth.verifier)
    id_token = rp.validate_id_token(body["id_token"], auth.nonce, body["access_token"])
    assert id_token["acr"] == "loa/2" and id_token["amr"] == ["pwd"]
    verified = id_token["verified_claims"]
    assert verified["claims"] == {"name": citizen.name}
    assert verified["verification"]["trust_framework"] == "cn_realname"
    account_id = provider.core.identities.find_person(IdNumber.parse(citizen.id_number))
    assert account_id is not None and provider.core.accounts.get(account_id).assurance_level == 2


@pytest.mark.parametrize("wrong", ["name", "number"])
def test_a_mismatch_and_an_unknown_number_get_the_same_answer_and_create_nothing(
        provider: Provider, make_rp: RpFactory, browser: Browser, wrong: str) -> None:
    citizen = registered_citizen(provider.core)
    unknown = make_id_number(random.Random(uuid.uuid4().int))  # valid, but in no registry
    attempt = Citizen("李雷", citizen.id_number) if wrong == "name" else Citizen(citizen.name, unknown)
    before = _accounts(provider)
    rp = make_rp()
    page = sign_up(browser, rp.authorization().url, attempt, stop_at=rp.redirect_uri)
    assert (page.status_code, outcome(page)) == (200, "signup.no_match")
    assert attempt.id_number not in page.text
    assert _accounts(provider) == before


def test_failed_verifications_are_throttled_per_address_and_number_before_asking_the_registry(
        backend: Backend, tmp_path: Path, browser: Browser) -> None:
    with serve_provider(backend, tmp_path, YIHAO_SIGNUP_MAX_FAILURES="2") as provider:
        citizen = registered_citizen(provider.core)
        client, secret = provider.core.clients.create(name="RP", redirect_uris=["https://rp.example/cb"])
        from tests.rp import RelyingParty

        rp = RelyingParty(provider.url, client.client_id, secret, "https://rp.example/cb")
        for n in range(2):
            page = sign_up(browser, rp.authorization().url, Citizen(f"错误{n}", citizen.id_number),
                           stop_at=rp.redirect_uri)
            assert outcome(page) == "signup.no_match"
        page = sign_up(browser, rp.authorization().url, citizen, stop_at=rp.redirect_uri)  # right, but too late
        assert (page.status_code, outcome(page)) == (429, "signup.throttled")
        assert provider.core.identities.find_person(IdNumber.parse(citizen.id_number)) is None
        other = registered_citizen(provider.core)  # another number, from the same address
        assert outcome(sign_up(browser, rp.authorization().url, other, stop_at=rp.redirect_uri)) == "signup.throttled"
        elsewhere = provider.core.verification.sign_up(  # the tried number, from another address
            name=citizen.name, id_number=IdNumber.parse(citizen.id_number), username=f"u{uuid.uuid4().hex[:10]}",
            password="correct horse battery", phone=None, address="203.0.113.7")
        assert elsewhere.status == "throttled"


def test_a_number_already_bound_offers_recovery_never_a_second_account(provider: Provider, make_rp: RpFactory,
                                                                     browser: Browser) -> None:
    citizen = registered_citizen(provider.core)
    rp = make_rp()
    first = sign_up(browser, rp.authorization().url, citizen, stop_at=rp.redirect_uri)
    assert parse_form(first.text)["action"].endswith("/consent")
    before = _accounts(provider)
    again = Browser()
    try:
        page = sign_up(again, rp.authorization().url, citizen, stop_at=rp.redirect_uri)
    finally:
        again.close()
    assert outcome(page) == "signup.taken"
    assert 'id="recover"' in page.text  # a way back to the login page
    assert _accounts(provider) == before


def test_an_unavailable_registry_is_a_try_later_page_and_creates_nothing(backend: Backend, tmp_path: Path,
                                                                         browser: Browser) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    with serve_provider(backend, tmp_path, YIHAO_POPULATION_REGISTRY="http", YIHAO_POPULATION_REGISTRY_URL=closed,
                        YIHAO_POPULATION_REGISTRY_RETRIES="0", YIHAO_POPULATION_REGISTRY_TIMEOUT_MS="300") as provider:
        from tests.rp import RelyingParty

        client, secret = provider.core.clients.create(name="RP", redirect_uris=["https://rp.example/cb"])
        rp = RelyingParty(provider.url, client.client_id, secret, "https://rp.example/cb")
        username = f"u{uuid.uuid4().hex[:10]}"
        citizen = Citizen("王小明", "350102199003070012")
        page = sign_up(browser, rp.authorization(ui_locales="en").url, citizen, username=username,
                       stop_at=rp.redirect_uri)
        assert (page.status_code, outcome(page)) == (503, "signup.unavailable")
        assert "try again later" in page.text
        assert provider.core.accounts.by_username(username) is None


def test_an_invalid_number_says_which_part_is_wrong_without_asking_the_registry(
        provider: Provider, make_rp: RpFactory, browser: Browser) -> None:
    rp = make_rp()
    page = sign_up(browser, rp.authorization(ui_locales="en").url, Citizen("王小明", "350102199003070013"),
                   stop_at=rp.redirect_uri)
    assert (page.status_code, outcome(page)) == (400, "signup.bad_id_number")
    assert "the check character (18th) should be 2" in page.text


def test_the_sign_up_form_needs_the_interactions_csrf_token(provider: Provider, make_rp: RpFactory,
                                                           browser: Browser) -> None:
    rp = make_rp()
    page = browser.follow(browser.get(rp.authorization().url), rp.redirect_uri)
    signup_url = str(page.url) + "/signup"
    response = browser.http.post(signup_url, data={"csrf_token": "forged", "name": "王小明",
                                                   "id_number": "350102199003070012"})
    assert response.status_code == 403


def test_no_id_number_reaches_the_logs_during_sign_up(provider: Provider, make_rp: RpFactory, browser: Browser,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    citizen = registered_citizen(provider.core)
    rp = make_rp()
    with caplog.at_level(logging.DEBUG):
        sign_up(browser, rp.authorization().url, Citizen("错误的名字", citizen.id_number), stop_at=rp.redirect_uri)
        page = sign_up(browser, rp.authorization(claims=VERIFIED_NAME).url, citizen, stop_at=rp.redirect_uri)
        code = callback_params(browser.consent(page, "approve", rp.redirect_uri))["code"]
        assert code
        provider.core.audit.flush()
    number = IdNumber.parse(citizen.id_number)
    assert caplog.records, "the flow was logged"
    account_id = provider.core.identities.find_person(number)
    with provider.core.engine.connect() as connection:
        audit = json.dumps([list(map(str, row)) for row in connection.execute(
            select(AuditEvent.event, AuditEvent.details).where(AuditEvent.subject == account_id))], ensure_ascii=False)
    assert "identity.verified" in audit
    for shown in (citizen.id_number, number.masked):
        assert shown not in caplog.text and shown not in audit


def test_a_password_login_on_an_l2_identity_reaches_loa_2(provider: Provider, make_rp: RpFactory,
                                                          browser: Browser) -> None:
    citizen = registered_citizen(provider.core)
    rp = make_rp(first_party=True)
    username = f"u{uuid.uuid4().hex[:10]}"
    sign_up(browser, rp.authorization().url, citizen, username=username, stop_at=rp.redirect_uri)
    fresh = Browser()
    try:
        auth = rp.authorization(acr_values="loa/2")
        code = callback_params(fresh.login(auth.url, username, "correct horse battery", stop_at=rp.redirect_uri))["code"]
    finally:
        fresh.close()
    body = rp.fetch_token(code, auth.verifier)
    assert rp.validate_id_token(body["id_token"], auth.nonce)["acr"] == "loa/2"


def test_an_essential_loa_2_is_unmet_for_an_l1_account_after_it_logs_in(provider: Provider, make_rp: RpFactory,
                                                                       person: Person, browser: Browser) -> None:
    rp = make_rp(first_party=True)
    auth = rp.authorization(claims=json.dumps({"id_token": {"acr": {"essential": True, "value": "loa/2"}}}))
    response = browser.login(auth.url, person.username, person.password, stop_at=rp.redirect_uri)
    assert callback_params(response)["error"] == "unmet_authentication_requirements"


def test_an_l1_account_is_raised_to_l2_on_the_account_page(provider: Provider, make_rp: RpFactory, person: Person,
                                                          browser: Browser) -> None:
    rp = make_rp(first_party=True)
    browser.login(rp.authorization().url, person.username, person.password, stop_at=rp.redirect_uri)
    page = browser.get(provider.url + "/account/verify?lang=en")
    form = parse_form(page.text)
    assert form["action"] == "/account/verify"
    citizen = registered_citizen(provider.core, name="李四")
    wrong = browser.http.post(provider.url + "/account/verify", data={
        "csrf_token": form["csrf_token"], "name": "李四", "id_number": registered_citizen(provider.core).id_number})
    assert outcome(wrong) == "signup.no_match" and provider.core.accounts.get(person.id).assurance_level == 1
    done = browser.http.post(provider.url + "/account/verify", data={
        "csrf_token": form["csrf_token"], "name": citizen.name, "id_number": citizen.id_number})
    assert 'data-level="L2"' in done.text
    assert provider.core.accounts.get(person.id).assurance_level == 2
    assert provider.core.identities.find_person(IdNumber.parse(citizen.id_number)) == person.id


def test_the_account_page_refuses_a_forged_form_and_a_stranger(provider: Provider, make_rp: RpFactory,
                                                               person: Person, browser: Browser) -> None:
    citizen = registered_citizen(provider.core, name="李四")
    stranger = browser.http.post(provider.url + "/account/verify", data={"csrf_token": "x", "name": citizen.name,
                                                                         "id_number": citizen.id_number})
    assert stranger.status_code == 401
    rp = make_rp(first_party=True)
    browser.login(rp.authorization().url, person.username, person.password, stop_at=rp.redirect_uri)
    forged = browser.http.post(provider.url + "/account/verify", data={"csrf_token": "x", "name": citizen.name,
                                                                       "id_number": citizen.id_number})
    assert forged.status_code == 403 and provider.core.accounts.get(person.id).assurance_level == 1


def test_upgrading_to_a_number_another_account_holds_is_refused(provider: Provider, make_rp: RpFactory,
                                                                person: Person, browser: Browser) -> None:
    citizen = registered_citizen(provider.core, name="李四")
    holder = provider.core.accounts.create(f"h{uuid.uuid4().hex[:10]}", "correct horse battery")
    provider.core.identities.bind_person(holder.id, IdNumber.parse(citizen.id_number), level=2, source="test")
    result = provider.core.verification.upgrade(person.id, name=citizen.name,
                                                id_number=IdNumber.parse(citizen.id_number), address="203.0.113.9")
    assert result.status == "taken" and provider.core.accounts.get(person.id).assurance_level == 1


def test_signup_pages_speak_both_languages(provider: Provider, make_rp: RpFactory, browser: Browser) -> None:
    rp = make_rp()
    for locale, title in (("zh-CN", "实名注册"), ("en", "Sign up with your real name")):
        page = browser.follow(browser.get(rp.authorization(ui_locales=locale).url), rp.redirect_uri)
        signup = browser.get(str(page.url) + "/signup")
        assert signup.status_code == 200 and title in signup.text



def test_acr_values_are_the_configured_uris(backend: Backend, tmp_path: Path, browser: Browser) -> None:
    levels = " ".join(f"https://acr.example.gov.cn/loa{n}" for n in range(1, 5))
    with serve_provider(backend, tmp_path, YIHAO_ACR_VALUES=levels) as provider:
        from tests.idp.realname_helpers import verified_account
        from tests.rp import RelyingParty

        client, secret = provider.core.clients.create(name="RP", redirect_uris=["https://rp.example/cb"],
                                                      first_party=True)
        rp = RelyingParty(provider.url, client.client_id, secret, "https://rp.example/cb")
        assert rp.metadata["acr_values_supported"] == levels.split()  # up to a passkey on an L4 identity
        person = verified_account(provider.core)
        auth = rp.authorization(acr_values="https://acr.example.gov.cn/loa2")
        code = callback_params(browser.login(auth.url, person.username, person.password,
                                             stop_at=rp.redirect_uri))["code"]
        claims = rp.validate_id_token(rp.fetch_token(code, auth.verifier)["id_token"], auth.nonce)
        assert claims["acr"] == "https://acr.example.gov.cn/loa2"


@pytest.mark.parametrize("value", ["loa/1 loa/2 loa/3", "a a b c"])
def test_acr_values_must_be_four_distinct_uris(value: str) -> None:
    from idp.settings import ConfigError, load_settings

    with pytest.raises(ConfigError, match="YIHAO_ACR_VALUES"):
        load_settings({"YIHAO_ACR_VALUES": value})


@pytest.mark.parametrize(("fields", "message", "status"), [
    ({"name": "", "id_number": "350102199003070012"}, "signup.bad_name", 400),
    ({"name": "王\x07小明", "id_number": "350102199003070012"}, "signup.bad_name", 400),
    ({"name": "王" * 65, "id_number": "350102199003070012"}, "signup.bad_name", 400),
    ({"name": "王小明", "id_number": ""}, "signup.bad_id_number", 400),
    ({"name": "王小明", "id_number": "３５０１０２１９９００３０７００１２" * 50}, "signup.bad_id_number", 400),
    ({"name": "王小明", "id_number": "350102199003070012", "phone": "call me"}, "signup.bad_phone", 400),
    ({"name": "王小明", "id_number": "350102199003070012", "username": "a b"}, "signup.bad_credentials", 400),
    ({"name": "王小明", "id_number": "350102199003070012", "password": "short"}, "signup.bad_credentials", 400),
])
def test_bad_sign_up_input_is_a_readable_page_and_creates_nothing(provider: Provider, make_rp: RpFactory,
                                                                 browser: Browser, fields: dict[str, str],
                                                                 message: str, status: int) -> None:
    rp = make_rp()
    page = browser.follow(browser.get(rp.authorization().url), rp.redirect_uri)
    form = parse_form(browser.get(str(page.url) + "/signup").text)
    before = _accounts(provider)
    data = {"csrf_token": form["csrf_token"], "username": f"u{uuid.uuid4().hex[:10]}",
            "password": "correct horse battery", **fields}
    response = browser.http.post(str(page.url) + "/signup", data=data)
    assert (response.status_code, outcome(response)) == (status, message)
    assert "Traceback" not in response.text and _accounts(provider) == before


def test_a_sign_up_body_that_is_not_a_form_is_refused_without_a_500(provider: Provider, make_rp: RpFactory,
                                                                    browser: Browser) -> None:
    rp = make_rp()
    page = browser.follow(browser.get(rp.authorization().url), rp.redirect_uri)
    response = browser.http.post(str(page.url) + "/signup", content=b'{"name": 1}',
                                 headers={"Content-Type": "application/json"})
    assert response.status_code == 403 and outcome(response) == "login.csrf"
    unknown = browser.http.post(provider.url + "/interaction/no-such/signup", data={"csrf_token": "x"})
    assert unknown.status_code == 400 and "interaction_expired" in unknown.text


def test_the_same_person_signing_up_twice_at_once_gets_one_account(provider: Provider) -> None:
    from concurrent.futures import ThreadPoolExecutor

    citizen = registered_citizen(provider.core)
    number = IdNumber.parse(citizen.id_number)
    before = _accounts(provider)

    def attempt(n: int) -> str:
        return provider.core.verification.sign_up(
            name=citizen.name, id_number=number, username=f"twice{n}-{uuid.uuid4().hex[:8]}",
            password="correct horse battery", phone=None, address="192.0.2.10").status

    with ThreadPoolExecutor(2) as pool:
        outcomes = sorted(pool.map(attempt, range(2)))
    assert outcomes == ["taken", "verified"]
    assert _accounts(provider) == before + 1
