"""Enterprise accounts from the legal-entity registry, their agents, and acting for one at login."""
from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from idp.models._base import utcnow
from realname.enterprises import ENTERPRISE_CLAIM, EnterpriseError
from realname.pii import CreditCode
from tests.idp.conftest import Person, Provider, RpFactory
from tests.idp.realname_helpers import VerifiedAccount, registered_enterprise, verified_account
from tests.live import yihao
from tests.rp import Browser, RelyingParty, callback_params, parse_form


def _env(provider: Provider) -> dict[str, str]:
    """The CLI against the provider's own database and keys."""
    settings = provider.core.settings
    env = {"YIHAO_DATABASE_URL": settings.database_url, "YIHAO_VAR_DIR": str(settings.var_dir),
           "YIHAO_MASTER_KEY": settings.master_key, "YIHAO_LOG_LEVEL": "WARNING"}
    if settings.redis_url:
        env.update(YIHAO_REDIS_URL=settings.redis_url, YIHAO_REDIS_PREFIX=settings.redis_prefix)
    return env


def _enterprise(provider: Provider, name: str) -> tuple[str, str]:
    """(account id, credit code) of an enterprise made from the registry."""
    code = registered_enterprise(provider.core, name)
    return provider.core.enterprises.create(CreditCode.parse(code)).id, code


def test_enterprises_create_makes_the_account_from_the_registry(provider: Provider) -> None:
    code = registered_enterprise(provider.core, "福州示例科技有限公司")
    result = yihao(_env(provider), "enterprises", "create", code, "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert (out["name"], out["credit_code"]) == ("福州示例科技有限公司", CreditCode.parse(code).masked)
    assert code not in result.stdout
    profile = provider.core.accounts.get(out["id"])
    assert profile is not None and (profile.kind, profile.assurance_level) == ("enterprise", 2)
    again = yihao(_env(provider), "enterprises", "create", code)
    assert again.returncode == 1 and "already exists" in again.stderr


@pytest.mark.parametrize("status", ["revoked", None])
def test_enterprises_create_refuses_a_code_the_registry_does_not_confirm(provider: Provider,
                                                                        status: str | None) -> None:
    if status:
        code = registered_enterprise(provider.core, "吊销公司", status=status)
    else:
        code = "91350102MA2Y0001X6"  # valid, in no registry here
    result = yihao(_env(provider), "enterprises", "create", code)
    assert result.returncode == 1 and result.stderr.startswith("yihao: ")


def test_enterprises_create_refuses_an_invalid_code_with_the_reason(provider: Provider) -> None:
    result = yihao(_env(provider), "enterprises", "create", "91350102MA2Y0001X7")
    assert result.returncode == 1 and "the credit code is not valid" in result.stderr


def test_add_agent_needs_a_verified_person(provider: Provider, person: Person) -> None:
    _id, code = _enterprise(provider, "经办测试公司")
    refused = yihao(_env(provider), "enterprises", "add-agent", "--enterprise", code, "--person", person.username,
                    "--role", "agent")
    assert refused.returncode == 1 and "not verified" in refused.stderr
    verified = verified_account(provider.core)
    added = yihao(_env(provider), "enterprises", "add-agent", "--enterprise", code, "--person", verified.username,
                  "--role", "legal_representative", "--valid-until", "2099-12-31")
    assert added.returncode == 0, added.stderr
    assert [m.role for m in provider.core.enterprises.mandates(verified.id)] == ["legal_representative"]


def test_an_enterprise_cannot_act_as_an_agent_and_periods_must_make_sense(provider: Provider) -> None:
    enterprise_id, _code = _enterprise(provider, "甲公司")
    other_id, _ = _enterprise(provider, "乙公司")
    with pytest.raises(EnterpriseError):
        provider.core.enterprises.add_agent(enterprise_id, other_id, "agent")
    person = verified_account(provider.core)
    now = utcnow()
    with pytest.raises(EnterpriseError):
        provider.core.enterprises.add_agent(enterprise_id, person.id, "agent", valid_from=now, valid_until=now)


# -- acting for an enterprise at login ---------------------------------------------------------------

def _rp(make_rp: RpFactory, **metadata: Any) -> RelyingParty:
    rp = make_rp(scope="openid profile enterprise", **metadata)
    rp.scope = "openid enterprise"
    return rp


def _login(rp: RelyingParty, person: VerifiedAccount, browser: Browser) -> tuple[Any, Any]:
    auth = rp.authorization()
    page = browser.login(auth.url, person.username, person.password, stop_at=rp.redirect_uri, consent=None)
    return auth, page


def test_a_person_acting_for_several_enterprises_chooses_one_and_the_id_token_says_so(
        provider: Provider, make_rp: RpFactory, browser: Browser) -> None:
    person = verified_account(provider.core, name="林agent")
    first, first_code = _enterprise(provider, "一号甲公司")
    second, _ = _enterprise(provider, "一号乙公司")
    provider.core.enterprises.add_agent(first, person.id, "agent")
    provider.core.enterprises.add_agent(second, person.id, "legal_representative")
    rp = _rp(make_rp, first_party=True)
    auth, page = _login(rp, person, browser)
    form = parse_form(page.text)
    assert form["action"].endswith("/enterprise")
    assert "一号甲公司" in page.text and "一号乙公司" in page.text
    assert CreditCode.parse(first_code).masked in page.text and first_code not in page.text
    response = browser.follow(browser.http.post(str(page.url) + "/enterprise", data={
        "csrf_token": form["csrf_token"], "enterprise": first}), rp.redirect_uri)
    body = rp.fetch_token(callback_params(response)["code"], auth.verifier)
    claims = rp.validate_id_token(body["id_token"], auth.nonce)
    person_sub = provider.core.issuer.subject(provider.core.clients.get(rp.client_id), person.id)
    assert claims["act"] == {"sub": person_sub} and claims["sub"] != person_sub
    assert claims[ENTERPRISE_CLAIM] == {"name": "一号甲公司", "credit_code": CreditCode.parse(first_code).masked,
                                        "role": "agent"}
    info = rp.userinfo(body["access_token"]).json()
    assert (info["sub"], info["act"]) == (claims["sub"], claims["act"])  # OIDC Core §5.3.2: the same sub


def test_choosing_no_enterprise_continues_as_the_person(provider: Provider, make_rp: RpFactory,
                                                        browser: Browser) -> None:
    person = verified_account(provider.core)
    enterprise, _ = _enterprise(provider, "丙公司")
    provider.core.enterprises.add_agent(enterprise, person.id, "agent")
    rp = _rp(make_rp, first_party=True)
    auth, page = _login(rp, person, browser)
    form = parse_form(page.text)
    response = browser.follow(browser.http.post(str(page.url) + "/enterprise", data={
        "csrf_token": form["csrf_token"], "enterprise": ""}), rp.redirect_uri)
    claims = rp.validate_id_token(rp.fetch_token(callback_params(response)["code"], auth.verifier)["id_token"],
                                  auth.nonce)
    assert "act" not in claims and ENTERPRISE_CLAIM not in claims


def test_an_enterprise_the_person_may_not_act_for_is_refused(provider: Provider, make_rp: RpFactory,
                                                             browser: Browser) -> None:
    person = verified_account(provider.core)
    mine, _ = _enterprise(provider, "丁公司")
    theirs, _ = _enterprise(provider, "戊公司")
    provider.core.enterprises.add_agent(mine, person.id, "agent")
    rp = _rp(make_rp, first_party=True)
    _auth, page = _login(rp, person, browser)
    forged = browser.http.post(str(page.url) + "/enterprise", data={
        "csrf_token": parse_form(page.text)["csrf_token"], "enterprise": theirs})
    assert forged.status_code == 403


def test_an_expired_mandate_is_not_offered(provider: Provider, make_rp: RpFactory, browser: Browser) -> None:
    person = verified_account(provider.core)
    enterprise, _ = _enterprise(provider, "己公司")
    now = utcnow()
    provider.core.enterprises.add_agent(enterprise, person.id, "agent", valid_from=now - timedelta(days=30),
                                        valid_until=now - timedelta(days=1))
    assert provider.core.enterprises.mandates(person.id) == []
    rp = _rp(make_rp, first_party=True)
    auth, page = _login(rp, person, browser)
    claims = rp.validate_id_token(rp.fetch_token(callback_params(page)["code"], auth.verifier)["id_token"], auth.nonce)
    assert "act" not in claims  # no chooser: straight back to the client, as the person


def test_without_the_enterprise_scope_there_is_no_chooser(provider: Provider, make_rp: RpFactory,
                                                          browser: Browser) -> None:
    person = verified_account(provider.core)
    enterprise, _ = _enterprise(provider, "庚公司")
    provider.core.enterprises.add_agent(enterprise, person.id, "agent")
    rp = make_rp(first_party=True)
    auth, page = _login(rp, person, browser)
    assert callback_params(page)["code"]


def test_the_chooser_also_follows_an_existing_session(provider: Provider, make_rp: RpFactory,
                                                      browser: Browser) -> None:
    person = verified_account(provider.core)
    enterprise, _ = _enterprise(provider, "辛公司")
    provider.core.enterprises.add_agent(enterprise, person.id, "agent")
    browser.login(make_rp(first_party=True).authorization().url, person.username, person.password,
                  stop_at="https://")
    rp = _rp(make_rp, first_party=True)
    page = browser.follow(browser.get(rp.authorization().url), rp.redirect_uri)
    assert parse_form(page.text)["action"].endswith("/enterprise")


def test_discovery_advertises_the_enterprise_scope(make_rp: RpFactory) -> None:
    meta = make_rp().metadata
    assert "enterprise" in meta["scopes_supported"] and "act" in meta["claims_supported"]




def test_a_refresh_after_the_mandate_ended_is_invalid_grant(provider: Provider, make_rp: RpFactory,
                                                            browser: Browser) -> None:
    import httpx
    from sqlalchemy import update

    from realname.models import EnterpriseAgent

    person = verified_account(provider.core)
    enterprise, _ = _enterprise(provider, "壬公司")
    provider.core.enterprises.add_agent(enterprise, person.id, "agent")
    rp = _rp(make_rp, first_party=True, grant_types=["authorization_code", "refresh_token"],
             session_refresh_tokens=True)
    auth, page = _login(rp, person, browser)
    form = parse_form(page.text)
    response = browser.follow(browser.http.post(str(page.url) + "/enterprise", data={
        "csrf_token": form["csrf_token"], "enterprise": enterprise}), rp.redirect_uri)
    body = rp.fetch_token(callback_params(response)["code"], auth.verifier)
    with provider.core.engine.begin() as connection:
        connection.execute(update(EnterpriseAgent).where(EnterpriseAgent.person_id == person.id)
                           .values(valid_until=utcnow() - timedelta(seconds=1)))
    refused = httpx.post(rp.metadata["token_endpoint"], auth=(rp.client_id, rp.client_secret or ""),
                         data={"grant_type": "refresh_token", "refresh_token": body["refresh_token"]})
    assert refused.status_code == 400
    assert refused.json() == {"error": "invalid_grant", "error_description": "the end-user no longer acts for this enterprise"}
