"""ID tokens: the client's registered algorithm, pairwise subjects, and the claims an RP relies on."""
from __future__ import annotations

import base64
import json

import pytest
from sqlalchemy import text

from idp import jose
from idp.accounts import Accounts
from idp.authn.password import Passwords
from tests.idp.conftest import Person, Provider, RpFactory
from tests.rp import tokens_after_login


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
def test_id_token_is_signed_with_the_clients_registered_algorithm(make_rp: RpFactory, person: Person, alg: str) -> None:
    rp = make_rp(first_party=True, id_token_signed_response_alg=alg)
    body, nonce = tokens_after_login(rp, person.username, person.password)
    assert jose.header(body["id_token"])["alg"] == alg
    claims = rp.validate_id_token(body["id_token"], nonce)
    assert claims["at_hash"] == jose.half_hash(body["access_token"], alg)


def test_two_clients_of_different_sectors_see_different_subjects(make_rp: RpFactory, person: Person) -> None:
    first, second = make_rp(first_party=True), make_rp(first_party=True)
    a, nonce_a = tokens_after_login(first, person.username, person.password)
    b, nonce_b = tokens_after_login(second, person.username, person.password)
    sub_a = first.validate_id_token(a["id_token"], nonce_a)["sub"]
    sub_b = second.validate_id_token(b["id_token"], nonce_b)["sub"]
    assert sub_a != sub_b and person.id not in (sub_a, sub_b)


def test_access_token_is_an_rfc9068_jwt_that_does_not_reveal_the_account(make_rp: RpFactory, person: Person) -> None:
    rp = make_rp(first_party=True)
    body, _nonce = tokens_after_login(rp, person.username, person.password)
    assert jose.header(body["access_token"])["typ"] == "at+jwt"
    payload = body["access_token"].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["client_id"] == rp.client_id and claims["scope"] == "openid profile email phone"
    assert person.id not in json.dumps(claims)


def test_a_password_hashed_at_old_parameters_is_rehashed_at_login(provider: Provider) -> None:
    weak = Accounts(provider.core.engine, Passwords(memory_kib=8192, time_cost=1, parallelism=1), provider.core.store)
    weak.create("old-hash-user", "an old pass phrase")
    current = provider.core.accounts
    assert current.authenticate("old-hash-user", "an old pass phrase") is not None
    with provider.core.engine.connect() as connection:
        stored = connection.execute(text("SELECT password_hash FROM account WHERE username = 'old-hash-user'")).scalar()
    assert str(stored).startswith("$argon2id$v=19$m=19456,t=2,p=1$")
