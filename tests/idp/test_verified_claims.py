"""OpenID Connect for Identity Assurance 1.0: verified_claims through the claims parameter."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import select

from idp import verified_claims as vc
from idp.models import AuditEvent
from realname.pii import IdNumber
from tests.idp.conftest import Person, Provider, RpFactory
from tests.idp.realname_helpers import VerifiedAccount, verified_account
from tests.idp.test_authorize_params import redirected_error, url
from tests.rp import Browser, RelyingParty, callback_params, parse_form


VerifiedPerson = VerifiedAccount


@pytest.fixture
def verified(provider: Provider) -> VerifiedAccount:
    return verified_account(provider.core)


def request(claims: dict[str, Any], where: str = "id_token", **verification: Any) -> str:
    return json.dumps({where: {"verified_claims": {"verification": {"trust_framework": None, **verification},
                                                    "claims": claims}}})


def login(rp: RelyingParty, person: Person | VerifiedAccount, browser: Browser, consent: str | None = "approve",
          **params: str) -> tuple[dict[str, Any], dict[str, Any]]:
    auth = rp.authorization(**params)
    response = browser.login(auth.url, person.username, person.password, stop_at=rp.redirect_uri, consent=consent)
    body = rp.fetch_token(callback_params(response)["code"], auth.verifier)
    return body, rp.validate_id_token(body["id_token"], auth.nonce, body["access_token"])


# -- as a relying party sees it ---------------------------------------------------------------------

def test_the_id_token_carries_verified_claims_with_the_registry_as_evidence(
        make_rp: RpFactory, verified: VerifiedPerson, browser: Browser) -> None:
    rp = make_rp(first_party=True)
    _body, id_token = login(rp, verified, browser, claims=request(
        {"name": None, "birthdate": None, "gender": None}, assurance_level=None, time=None, evidence=None))
    claims = id_token["verified_claims"]
    number = IdNumber.parse(verified.citizen.id_number)
    birth = verified.citizen.id_number[6:14]
    assert claims["claims"] == {"name": "陈静", "birthdate": f"{birth[:4]}-{birth[4:6]}-{birth[6:]}",
                                "gender": "male" if int(verified.citizen.id_number[16]) % 2 else "female"}
    verification = claims["verification"]
    assert (verification["trust_framework"], verification["assurance_level"]) == ("cn_realname", "L2")
    evidence = verification["evidence"]
    assert [e["type"] for e in evidence] == ["electronic_record"]
    assert evidence[0]["record"]["source"]["name"] == "local-population-registry"
    assert evidence[0]["check_details"][0]["check_method"] == "data"
    assert number.masked not in json.dumps(claims)  # nobody asked for the number


def test_userinfo_gets_the_verified_claims_asked_for_there_and_the_id_token_not(
        make_rp: RpFactory, verified: VerifiedPerson, browser: Browser) -> None:
    rp = make_rp(first_party=True)
    body, id_token = login(rp, verified, browser, claims=request({"name": None}, where="userinfo"))
    assert "verified_claims" not in id_token
    info = rp.userinfo(body["access_token"]).json()
    assert info["verified_claims"]["claims"] == {"name": "陈静"}


def test_verification_elements_are_returned_only_when_asked_for(make_rp: RpFactory, verified: VerifiedPerson,
                                                                 browser: Browser) -> None:
    _body, id_token = login(make_rp(first_party=True), verified, browser, claims=request({"name": None}))
    assert id_token["verified_claims"]["verification"] == {"trust_framework": "cn_realname"}


@pytest.mark.parametrize("constraint", [{"trust_framework": {"value": "eidas"}},
                                        {"assurance_level": {"value": "L3"}},
                                        {"evidence": [{"type": {"value": "document"}}]}])
def test_a_verification_filter_that_does_not_match_omits_verified_claims(
        make_rp: RpFactory, verified: VerifiedPerson, browser: Browser, constraint: dict[str, Any]) -> None:
    body, id_token = login(make_rp(first_party=True), verified, browser, claims=request({"name": None}, **constraint))
    assert "verified_claims" not in id_token and "sub" in id_token


def test_a_matching_values_filter_releases_them(make_rp: RpFactory, verified: VerifiedPerson,
                                                browser: Browser) -> None:
    _body, id_token = login(make_rp(first_party=True), verified, browser,
                            claims=request({"name": None}, assurance_level={"values": ["L3", "L2"]}))
    assert id_token["verified_claims"]["verification"]["assurance_level"] == "L2"


def test_unknown_claims_are_omitted_and_an_element_left_empty_is_omitted(
        make_rp: RpFactory, verified: VerifiedPerson, browser: Browser) -> None:
    rp = make_rp(first_party=True)
    _body, partly = login(rp, verified, browser, claims=request({"name": None, "nationalities": None}))
    assert partly["verified_claims"]["claims"] == {"name": "陈静"}
    _body, none = login(rp, verified, Browser(), claims=request({"nationalities": None}))
    assert "verified_claims" not in none


def test_an_l1_account_gets_no_verified_claims(make_rp: RpFactory, person: Person, browser: Browser) -> None:
    _body, id_token = login(make_rp(first_party=True), person, browser, claims=request({"name": None}))
    assert "verified_claims" not in id_token and id_token["acr"] == "loa/1"


@pytest.mark.parametrize(("claims", "description"), [
    ({"id_token": {"verified_claims": {"verification": {"trust_framework": None}}}},
     "claims.id_token.verified_claims.claims must be a non-empty JSON object"),
    ({"id_token": {"verified_claims": {"verification": {"trust_framework": None}, "claims": {}}}},
     "claims.id_token.verified_claims.claims must be a non-empty JSON object"),
    ({"userinfo": {"verified_claims": {"claims": {"name": None}}}},
     "claims.userinfo.verified_claims.verification must be a JSON object"),
    ({"id_token": {"verified_claims": [{"verification": {}, "claims": {"name": {"purpose": "x"}}}]}},
     "claims.id_token.verified_claims[0].claims.name.purpose must be 3 to 300 characters"),
    ({"id_token": {"verified_claims": []}}, "claims.id_token.verified_claims must not be an empty array"),
])
def test_a_malformed_verified_claims_request_is_invalid_request(provider: Provider, make_rp: RpFactory,
                                                                 browser: Browser, claims: dict[str, Any],
                                                                 description: str) -> None:
    response = browser.get(url(make_rp(), claims=json.dumps(claims)))
    assert redirected_error(provider, response) == ("invalid_request", description)


# -- the whole ID number ----------------------------------------------------------------------------

WHOLE = {vc.ID_NUMBER: None, "name": None}


def test_a_client_not_allowed_the_number_gets_the_masked_form(make_rp: RpFactory, verified: VerifiedPerson,
                                                             browser: Browser) -> None:
    rp = make_rp()
    auth = rp.authorization(claims=request(WHOLE), ui_locales="en")
    page = browser.login(auth.url, verified.username, verified.password, stop_at=rp.redirect_uri, consent=None)
    assert "your verified identity" in page.text and "your full resident ID number" not in page.text
    body = rp.fetch_token(callback_params(browser.consent(page, "approve", rp.redirect_uri))["code"], auth.verifier)
    claims = rp.validate_id_token(body["id_token"], auth.nonce)["verified_claims"]["claims"]
    assert claims == {"name": "陈静", vc.ID_NUMBER_MASKED: IdNumber.parse(verified.citizen.id_number).masked}


def test_an_allowed_client_gets_the_number_after_the_person_consents_to_it(
        provider: Provider, make_rp: RpFactory, verified: VerifiedPerson, browser: Browser) -> None:
    rp = make_rp(first_party=True, release_id_number=True)  # trusted, yet the person is asked
    auth = rp.authorization(claims=request(WHOLE), ui_locales="en")
    page = browser.login(auth.url, verified.username, verified.password, stop_at=rp.redirect_uri, consent=None)
    assert parse_form(page.text)["action"].endswith("/consent")
    assert "your full resident ID number" in page.text
    body = rp.fetch_token(callback_params(browser.consent(page, "approve", rp.redirect_uri))["code"], auth.verifier)
    claims = rp.validate_id_token(body["id_token"], auth.nonce)["verified_claims"]["claims"]
    assert claims[vc.ID_NUMBER] == verified.citizen.id_number
    provider.core.audit.flush()
    with provider.core.engine.connect() as connection:
        kinds = connection.execute(select(AuditEvent.event).where(AuditEvent.subject == verified.id)).scalars().all()
    assert "pii.revealed" in kinds


def test_a_person_who_denies_gives_the_allowed_client_nothing(make_rp: RpFactory, verified: VerifiedPerson,
                                                               browser: Browser) -> None:
    rp = make_rp(release_id_number=True)
    auth = rp.authorization(claims=request(WHOLE))
    page = browser.login(auth.url, verified.username, verified.password, stop_at=rp.redirect_uri, consent="deny")
    assert callback_params(page)["error"] == "access_denied"


# -- discovery and the pure rules -------------------------------------------------------------------

def test_discovery_advertises_identity_assurance(make_rp: RpFactory) -> None:
    meta = make_rp().metadata
    assert meta["verified_claims_supported"] is True
    assert meta["trust_frameworks_supported"] == ["cn_realname"]
    assert meta["evidence_supported"] == ["electronic_record"]
    assert meta["electronic_records_supported"] == ["population_register"]
    assert {"name", "birthdate", vc.ID_NUMBER} <= set(meta["claims_in_verified_claims_supported"])
    assert "verified_claims" in meta["claims_supported"]


RECORD = vc.Record(2, datetime(2026, 1, 1, tzinfo=timezone.utc), "local-population-registry", "陈静",
                   IdNumber("350102199003070012"))


def _element(**verification: Any) -> dict[str, Any]:
    return {"verification": {"trust_framework": None, **verification}, "claims": {"name": None}}


def test_a_max_age_older_than_the_verification_omits_it() -> None:
    now = RECORD.verified_at + timedelta(days=10)
    assert vc.select(_element(time={"max_age": 86400}), RECORD, trust_framework="cn_realname",
                     whole_id_number=False, now=now) is None
    assert vc.select(_element(time={"max_age": 30 * 86400}), RECORD, trust_framework="cn_realname",
                     whole_id_number=False, now=now) is not None


def test_an_array_request_is_answered_by_an_array_of_the_elements_that_match() -> None:
    answer = vc.select([_element(assurance_level={"value": "L4"}), _element()], RECORD, trust_framework="cn_realname",
                       whole_id_number=False)
    assert isinstance(answer, list) and len(answer) == 1 and answer[0]["claims"] == {"name": "陈静"}


def test_the_whole_number_is_given_only_when_allowed() -> None:
    element = {"verification": {}, "claims": {vc.ID_NUMBER: None}}
    masked = vc.select(element, RECORD, trust_framework="t", whole_id_number=False)
    whole = vc.select(element, RECORD, trust_framework="t", whole_id_number=True)
    assert masked == {"verification": {"trust_framework": "t"}, "claims": {vc.ID_NUMBER_MASKED: "3501**********0012"}}
    assert isinstance(whole, dict) and whole["claims"] == {vc.ID_NUMBER: "350102199003070012"}
