"""Which city account a provincial login is: by verified ID number when trusted, by the person's own
sign-in otherwise, created only when the policy allows; never by e-mail, phone or name."""
from __future__ import annotations

import json
import re
import uuid
from urllib.parse import parse_qs, urljoin, urlsplit

from sqlalchemy import select

from federation import broker
from federation.models import UpstreamLink
from idp import events
from idp.claims import ID_NUMBER_ITEM
from idp.models import AuditEvent
from idp.verified_claims import ID_NUMBER, ID_NUMBER_MASKED
from tests.federation.conftest import (SLUG, Federated, answer_consents, broker_login, citizen, city_rp, cli_env,
                                       is_consent_page, policy, register_city, tokens, upstream_button)
from tests.rp import Browser, parse_form, tokens_after_login


def _links(federated: Federated, account_id: str) -> list:
    return federated.city.core.federation.links.of_account(account_id)


def test_a_verified_citizen_is_linked_to_the_city_account_with_the_same_id_number(federated: Federated,
                                                                                  browser: Browser) -> None:
    at_province = citizen(federated.province)
    at_city = citizen(federated.city, id_number=at_province.id_number)
    rp = city_rp(federated.city)
    auth, response = broker_login(browser, rp, at_province.username, at_province.password)
    brokered = tokens(rp, auth, response)
    local, _nonce = tokens_after_login(rp, at_city.username, at_city.password)
    assert brokered["sub"] == rp.validate_id_token(local["id_token"], _nonce)["sub"]
    assert [(l.upstream, l.linked_by) for l in _links(federated, at_city.id)] == [(SLUG, "id_number")]
    assert brokered["acr"] == "loa/2"  # an L2 person here, a password login at the province (its loa/2)
    events.flush()


def test_a_first_login_creates_one_account_and_the_second_finds_it(federated: Federated) -> None:
    at_province = citizen(federated.province)
    rp = city_rp(federated.city)
    subjects = []
    for _ in range(2):
        browser = Browser()
        try:
            auth, response = broker_login(browser, rp, at_province.username, at_province.password)
            subjects.append(tokens(rp, auth, response)["sub"])
        finally:
            browser.close()
    assert subjects[0] == subjects[1]
    account_id = federated.city.core.identities.find_person(at_province.id_number)
    assert account_id is not None  # the ID number the province vouched for is bound to the new account
    assert federated.city.core.identities.level(account_id) == 2
    assert [l.linked_by for l in _links(federated, account_id)] == ["created"]


def test_without_creation_an_unknown_person_must_sign_in_locally_to_link(federated: Federated, browser: Browser) -> None:
    at_province = citizen(federated.province)
    at_city = citizen(federated.city, level=1, id_number=None)  # a city account with no verified link to them
    rp = city_rp(federated.city)
    with policy(federated, may_create=False, trusted_claims=[]):
        auth, page = broker_login(browser, rp, at_province.username, at_province.password)
        assert page.status_code == 200 and "/federation/link/" in page.text
        assert federated.city.core.identities.find_person(at_province.id_number) is None
        form = parse_form(page.text)
        wrong = browser.http.post(urljoin(str(page.url), form["action"]),
                                  data={"csrf_token": form["csrf_token"], "username": at_city.username,
                                        "password": "not the password"})
        assert wrong.status_code == 200 and not _links(federated, at_city.id)
        done = browser.follow(browser.http.post(urljoin(str(page.url), form["action"]),
                                                data={"csrf_token": form["csrf_token"], "username": at_city.username,
                                                      "password": at_city.password}), rp.redirect_uri)
        claims = tokens(rp, auth, done)
    local, nonce = tokens_after_login(rp, at_city.username, at_city.password)
    assert claims["sub"] == rp.validate_id_token(local["id_token"], nonce)["sub"]
    assert [l.linked_by for l in _links(federated, at_city.id)] == ["login"]


def _asks_for_the_id_number(federated: Federated) -> bool:
    """Whether the city's authorization request to the province asks for the verified ID number."""
    upstream = federated.city.core.federation.upstreams.get(SLUG)
    query = parse_qs(urlsplit(broker.start(federated.city.core, upstream, "uid", "browser")).query)
    if "claims" not in query:
        return False
    asked = json.loads(query["claims"][0])["id_token"]["verified_claims"]
    return asked["claims"] == {ID_NUMBER: None, "name": None} and "trust_framework" in asked["verification"]


def test_an_id_number_the_upstream_is_not_trusted_for_is_not_asked_for_and_links_nothing(
        federated: Federated, browser: Browser) -> None:
    at_province = citizen(federated.province)
    at_city = citizen(federated.city, id_number=at_province.id_number)
    rp = city_rp(federated.city)
    assert _asks_for_the_id_number(federated)
    with policy(federated, trusted_claims=["name"], may_create=False):
        assert not _asks_for_the_id_number(federated)
        _auth, page = broker_login(browser, rp, at_province.username, at_province.password)
    assert "/federation/link/" in page.text  # asked to prove it, not logged in to the account with that number
    assert _links(federated, at_city.id) == []


def test_a_person_who_refuses_the_id_number_at_the_province_is_not_linked_by_it(federated: Federated,
                                                                                browser: Browser) -> None:
    at_province = citizen(federated.province)
    at_city = citizen(federated.city, id_number=at_province.id_number)
    rp = city_rp(federated.city)
    auth = rp.authorization()
    page = browser.follow(browser.get(auth.url), rp.redirect_uri)
    start = urljoin(str(page.url), upstream_button(page.text))
    asked = browser.login(start, at_province.username, at_province.password, stop_at=rp.redirect_uri, consent=None)
    assert is_consent_page(asked) and "您的完整公民身份号码" in asked.text  # the province asks the person
    refused = answer_consents(browser, asked, rp.redirect_uri, "deny")
    assert refused.status_code == 400 and "upstream_denied" in refused.text
    assert _links(federated, at_city.id) == []
    assert not federated.province.core.consents.covers(at_province.id, federated.client_id, ID_NUMBER_ITEM)


def test_a_city_client_the_province_does_not_allow_gets_no_id_number_and_links_nothing(federated: Federated,
                                                                                       browser: Browser) -> None:
    """The same city, registered at the province without release_id_number: the province asks no consent
    for the number and sends only its masked form, so the city cannot link by it."""
    at_province = citizen(federated.province)
    at_city = citizen(federated.city, id_number=at_province.id_number)
    client_id, secret = register_city(federated.province, federated.city, release_id_number=False)
    rp = city_rp(federated.city)
    with policy(federated, client_id=client_id, client_secret=secret, may_create=False):
        assert _asks_for_the_id_number(federated)
        # a consent page at the province, refused, would end in an error page rather than the link page
        _auth, page = broker_login(browser, rp, at_province.username, at_province.password, consent="deny")
        assert page.status_code == 200 and "/federation/link/" in page.text
    assert _links(federated, at_city.id) == []


def test_an_id_number_given_without_consent_is_never_released(federated: Federated) -> None:
    """Even for the allowed city client: verified_claims carries the masked number until the person consents."""
    at_province = citizen(federated.province)
    server = federated.province.core.server
    client = federated.province.core.clients.get(federated.client_id)
    request = json.loads(broker.CLAIMS_REQUEST)["id_token"]["verified_claims"]
    before = server.verified_claims(client, at_province.id, request)["verified_claims"]["claims"]
    assert ID_NUMBER not in before and before[ID_NUMBER_MASKED] == at_province.id_number.masked
    federated.province.core.consents.grant(at_province.id, federated.client_id, ID_NUMBER_ITEM)
    after = server.verified_claims(client, at_province.id, request)["verified_claims"]["claims"]
    assert after[ID_NUMBER] == at_province.id_number.reveal()


def test_an_id_number_trusted_only_at_level_one_links_nothing(federated: Federated, browser: Browser) -> None:
    at_province = citizen(federated.province)
    at_city = citizen(federated.city, id_number=at_province.id_number)
    rp = city_rp(federated.city)
    with policy(federated, identity_level=1, may_create=False):
        _auth, page = broker_login(browser, rp, at_province.username, at_province.password)
    assert "/federation/link/" in page.text
    assert _links(federated, at_city.id) == []


def test_a_local_sign_in_to_another_persons_account_is_not_linked(federated: Federated, browser: Browser) -> None:
    at_province = citizen(federated.province)
    someone_else = citizen(federated.city)  # verified, with another ID number
    rp = city_rp(federated.city)
    with policy(federated, may_create=False):
        _auth, page = broker_login(browser, rp, at_province.username, at_province.password)
        form = parse_form(page.text)
        refused = browser.http.post(urljoin(str(page.url), form["action"]),
                                    data={"csrf_token": form["csrf_token"], "username": someone_else.username,
                                          "password": someone_else.password})
    assert refused.status_code == 403 and "identity_mismatch" in refused.text
    assert _links(federated, someone_else.id) == []


def test_links_are_never_made_on_a_matching_email_or_name(federated: Federated, browser: Browser) -> None:
    email = f"same-{uuid.uuid4().hex[:6]}@example.gov.cn"
    province_profile = federated.province.core.accounts.create(f"p{uuid.uuid4().hex[:9]}", "a good password 1",
                                                               name="赵六", email=email, email_verified=True)
    city_profile = federated.city.core.accounts.create(f"c{uuid.uuid4().hex[:9]}", "a good password 1",
                                                       name="赵六", email=email, email_verified=True)
    rp = city_rp(federated.city)
    with policy(federated, may_create=False, trusted_claims=["name", "email"]):
        _auth, page = broker_login(browser, rp, province_profile.username, "a good password 1")
    assert "/federation/link/" in page.text
    assert _links(federated, city_profile.id) == []


def test_the_person_lists_and_removes_a_link_and_both_are_audited(federated: Federated, browser: Browser) -> None:
    at_province = citizen(federated.province)
    rp = city_rp(federated.city)
    auth, response = broker_login(browser, rp, at_province.username, at_province.password)
    tokens(rp, auth, response)
    account_id = federated.city.core.identities.find_person(at_province.id_number)
    page = browser.get(federated.city.url + "/account/links")
    assert page.status_code == 200 and "省统一身份认证平台" in page.text
    form = parse_form(page.text)
    forged = browser.http.post(urljoin(str(page.url), form["action"]), data={"csrf_token": "forged"})
    assert forged.status_code == 403 and len(_links(federated, account_id)) == 1
    removed = browser.http.post(urljoin(str(page.url), form["action"]), data={"csrf_token": form["csrf_token"]})
    assert removed.status_code == 303 and _links(federated, account_id) == []
    events.flush()
    with federated.city.core.engine.connect() as connection:
        names = [r[0] for r in connection.execute(select(AuditEvent.event).where(AuditEvent.subject == account_id))]
    assert events.ACCOUNT_LINKED in names and events.ACCOUNT_UNLINKED in names
    assert not re.search(at_province.id_number.reveal(), page.text)


def test_an_administrator_lists_and_removes_links_from_the_command_line(federated: Federated, browser: Browser) -> None:
    from tests.live import yihao

    at_province = citizen(federated.province)
    rp = city_rp(federated.city)
    auth, response = broker_login(browser, rp, at_province.username, at_province.password)
    tokens(rp, auth, response)
    account_id = federated.city.core.identities.find_person(at_province.id_number)
    env = cli_env(federated.city)
    listed = yihao(env, "upstreams", "links", "--account", account_id, "--json")
    assert listed.returncode == 0, listed.stderr
    import json

    (link,) = json.loads(listed.stdout)
    assert (link["upstream"], link["linked_by"]) == (SLUG, "created")
    assert yihao(env, "upstreams", "unlink", link["id"]).returncode == 0
    assert _links(federated, account_id) == []
    with federated.city.core.engine.connect() as connection:
        assert connection.execute(select(UpstreamLink).where(UpstreamLink.id == link["id"])).first() is None


def test_the_link_page_is_throttled_like_the_login_page(federated: Federated, browser: Browser) -> None:
    at_province = citizen(federated.province)
    at_city = citizen(federated.city, level=1)
    rp = city_rp(federated.city)
    with policy(federated, may_create=False, trusted_claims=[]):
        _auth, page = broker_login(browser, rp, at_province.username, at_province.password)
        form = parse_form(page.text)
        url = urljoin(str(page.url), form["action"])
        statuses = [browser.http.post(url, data={"csrf_token": form["csrf_token"], "username": at_city.username,
                                                 "password": f"wrong {i}"}).status_code
                    for i in range(federated.city.core.settings.throttle_account_failures)]
        locked = browser.http.post(url, data={"csrf_token": form["csrf_token"], "username": at_city.username,
                                              "password": at_city.password})
    assert statuses[-1] == 429 and locked.status_code == 429 and "Retry-After" in locked.headers
    assert _links(federated, at_city.id) == []
