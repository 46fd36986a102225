"""一号通认 end to end, on two real Yihao servers (province upstream, city downstream), each with its own
database and store: a citizen verified at the province logs in at the city through the province, is
linked by ID number (once), reaches a second city app by SSO, a partner turns a provincial token into
a city token, and logging out at the province ends the city session. The refusals (untrusted issuer,
wrong audience, expired or replayed subject tokens, an ID number the upstream is not trusted for) run
against the same servers in test_token_exchange.py and test_linking.py."""
from __future__ import annotations

import time
from urllib.parse import urljoin

from sqlalchemy import func, select

from federation.models import UpstreamLink
from idp.models import Account
from tests.federation.conftest import Federated, broker_login, citizen, city_rp, tokens
from tests.federation.test_token_exchange import API, make_partner, provincial_token
from tests.rp import Browser, callback_params, parse_form


def _city_accounts_with(federated: Federated, account_id: str) -> int:
    with federated.city.core.engine.connect() as connection:
        index = connection.execute(select(Account.id_number_index).where(Account.id == account_id)).scalar()
        return connection.execute(select(func.count()).select_from(Account)
                                  .where(Account.id_number_index == index)).scalar()


def test_one_account_works_everywhere(federated: Federated, browser: Browser) -> None:
    province, city = federated.province, federated.city
    person = citizen(province, level=2)  # verified at the province (L2)
    registered = citizen(city, level=2, id_number=person.id_number)  # the same person registered at the city before

    # 1. brokered login at the city, linked by ID number to the account the city already had
    app = city_rp(city)
    auth, response = broker_login(browser, app, person.username, person.password)
    first = tokens(app, auth, response)
    assert city.core.issuer.read_access_token(first["_token"]["access_token"])[1] == registered.id
    assert first["acr"] == "loa/2" and "fed" in first["amr"]  # L2 here, a password login (loa/2) there

    # 2. a second login through the province: the same account, no duplicate, one link
    again = Browser()
    try:
        auth2, response2 = broker_login(again, app, person.username, person.password)
        assert tokens(app, auth2, response2)["sub"] == first["sub"]
    finally:
        again.close()
    assert _city_accounts_with(federated, registered.id) == 1
    with city.core.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(UpstreamLink)
                                  .where(UpstreamLink.account_id == registered.id)).scalar() == 1

    # 3. SSO: a second city app, same browser, no login page
    other = city_rp(city)
    auth3 = other.authorization()
    sso = browser.follow(browser.get(auth3.url), other.redirect_uri)
    assert sso.is_redirect, "the second app should not show a login page"
    second = tokens(other, auth3, sso)
    assert second["sid"] == first["sid"]

    # 4. a partner exchanges a provincial token for a city token
    partner = make_partner(federated)
    exchanged = partner.exchange(city, provincial_token(partner, person, city.url), audience=API, scope="records")
    assert exchanged.status_code == 200, exchanged.text
    assert city.core.issuer.read_access_token(exchanged.json()["access_token"])[1] == registered.id

    # 5. logging out at the province ends the city session (back-channel logout, province → city)
    page = browser.get(province.url + "/logout")
    form = parse_form(page.text)
    browser.http.post(urljoin(str(page.url), form["action"]), data={"csrf_token": form["csrf_token"], "action": "logout"})
    deadline = time.monotonic() + 20
    while city.core.sessions.alive(first["sid"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not city.core.sessions.alive(first["sid"])
    auth4 = other.authorization(prompt="none")
    ended = browser.follow(browser.get(auth4.url), other.redirect_uri)
    assert callback_params(ended)["error"] == "login_required"
