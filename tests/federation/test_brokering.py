"""Logging in at the city through the province: the upstream flow, linking, and its failures."""
from __future__ import annotations

import uuid

from tests.federation.conftest import Federated, broker_login, city_rp, tokens
from tests.rp import Browser


def _citizen(federated: Federated) -> tuple[str, str, str]:
    username, password = f"c{uuid.uuid4().hex[:10]}", "province password 1"
    profile = federated.province.core.accounts.create(username, password, name="王五")
    return profile.id, username, password


def test_login_through_the_province_reaches_the_city_app(federated: Federated, browser: Browser) -> None:
    _id, username, password = _citizen(federated)
    rp = city_rp(federated.city)
    auth, response = broker_login(browser, rp, username, password)
    claims = tokens(rp, auth, response)
    assert "fed" in claims["amr"]
    assert claims["iss"] == federated.city.url


def test_second_login_through_the_province_is_the_same_account(federated: Federated) -> None:
    _id, username, password = _citizen(federated)
    rp = city_rp(federated.city)
    subjects = []
    for _ in range(2):
        browser = Browser()
        try:
            auth, response = broker_login(browser, rp, username, password)
            subjects.append(tokens(rp, auth, response)["sub"])
        finally:
            browser.close()
    assert subjects[0] == subjects[1]
