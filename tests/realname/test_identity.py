"""One identifier, one account: binding ID numbers and credit codes, levels, sealing and rotation."""
from __future__ import annotations

import threading

import pytest
from cryptography.exceptions import InvalidTag
from sqlalchemy import Engine, text

from idp.accounts import Accounts
from idp.authn.password import Passwords
from idp.store.memory import MemoryStore
from realname.identity import Identities, IdentityTaken
from realname.pii import CreditCode, IdNumber, PiiVault, Sealed
from realname.rewrap import rewrap
from tests.realname.conftest import MASTER

NUMBER = IdNumber.parse("350102199003070012")
OTHER = IdNumber.parse("35010420000229002X")
CODE = CreditCode.parse("91350102MA2Y0001X6")


@pytest.fixture
def accounts(engine: Engine) -> Accounts:
    # The database is the session's, shared with other tests: only this module's accounts go.
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM account WHERE username LIKE 'idt-%' OR kind = 'enterprise'"))
    return Accounts(engine, Passwords(memory_kib=8, time_cost=1, parallelism=1), MemoryStore())


@pytest.fixture
def identities(engine: Engine, vault: PiiVault) -> Identities:
    return Identities(engine, vault)


def _person(accounts: Accounts, username: str) -> str:
    return accounts.create(f"idt-{username}", "correct horse battery").id


def test_a_bound_id_number_is_found_opened_and_raises_the_level(accounts: Accounts, identities: Identities) -> None:
    account = _person(accounts, "zhangsan")
    assert identities.find_person(NUMBER) is None
    assert accounts.get(account).assurance_level == 1
    identities.bind_person(account, NUMBER, level=2, source="local-population-registry")
    assert identities.find_person(NUMBER) == account
    assert identities.id_number(account).reveal() == NUMBER.reveal()
    assert identities.credit_code(account) is None
    profile = accounts.get(account)
    assert (profile.kind, profile.assurance_level) == ("person", 2)


def test_the_number_is_sealed_at_rest_and_bound_to_its_row(engine: Engine, accounts: Accounts,
                                                          identities: Identities, vault: PiiVault) -> None:
    first, second = _person(accounts, "first"), _person(accounts, "second")
    identities.bind_person(first, NUMBER, level=2, source="test")
    identities.bind_person(second, OTHER, level=2, source="test")
    with engine.connect() as connection:
        rows = dict(connection.execute(text("SELECT id, id_number_sealed FROM account WHERE id IN (:a, :b)"),
                                       {"a": first, "b": second}).all())
    assert all(NUMBER.reveal().encode() not in bytes(blob) for blob in rows.values())
    moved = Sealed(vault.key_id, bytes(rows[second]))  # second's ciphertext presented as first's
    with pytest.raises(InvalidTag):
        vault.open(moved, IdNumber, table="account", column="id_number_sealed", row_id=first)


def test_a_second_account_cannot_take_a_bound_number(accounts: Accounts, identities: Identities) -> None:
    holder, other = _person(accounts, "holder"), _person(accounts, "intruder")
    identities.bind_person(holder, NUMBER, level=2, source="test")
    with pytest.raises(IdentityTaken) as taken:
        identities.bind_person(other, NUMBER, level=2, source="test")
    assert taken.value.account_id == holder
    assert identities.id_number(other) is None and accounts.get(other).assurance_level == 1


def test_an_account_keeps_its_number_and_rebinding_it_only_raises_the_level(accounts: Accounts,
                                                                            identities: Identities) -> None:
    account = _person(accounts, "keeper")
    identities.bind_person(account, NUMBER, level=3, source="face-match")
    identities.bind_person(account, NUMBER, level=2, source="local-population-registry")
    assert accounts.get(account).assurance_level == 3
    with pytest.raises(ValueError, match="already bound"):
        identities.bind_person(account, OTHER, level=4, source="test")
    assert identities.find_person(OTHER) is None and accounts.get(account).assurance_level == 3


def test_raise_level_never_lowers(accounts: Accounts, identities: Identities) -> None:
    account = _person(accounts, "levels")
    assert identities.raise_level(account, 3, source="face-match") is True
    assert identities.raise_level(account, 2, source="test") is False
    assert identities.level(account) == 3
    with pytest.raises(ValueError):
        identities.raise_level(account, 5, source="test")


def test_two_accounts_binding_one_number_at_once_one_wins(accounts: Accounts, identities: Identities) -> None:
    contenders = [_person(accounts, f"racer{i}") for i in range(4)]
    barrier, outcomes = threading.Barrier(len(contenders)), []

    def bind(account: str) -> None:
        barrier.wait()
        try:
            identities.bind_person(account, NUMBER, level=2, source="test")
            outcomes.append(("bound", account))
        except IdentityTaken as taken:
            outcomes.append(("taken", taken.account_id))

    threads = [threading.Thread(target=bind, args=(account,)) for account in contenders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [account for outcome, account in outcomes if outcome == "bound"]
    assert len(winners) == 1
    assert identities.find_person(NUMBER) == winners[0]
    assert [account for outcome, account in outcomes if outcome == "taken"] == winners * 3


def test_an_enterprise_account_is_created_once_per_credit_code(accounts: Accounts, identities: Identities) -> None:
    created = identities.create_enterprise(CODE, name="福州示例科技有限公司", level=2, source="local-entity-registry")
    assert (created.kind, created.assurance_level, created.name) == ("enterprise", 2, "福州示例科技有限公司")
    assert identities.find_enterprise(CODE) == created.id
    assert identities.credit_code(created.id).reveal() == CODE.reveal()
    assert accounts.get(created.id) == created
    with pytest.raises(IdentityTaken) as taken:
        identities.create_enterprise(CODE, name="another", level=2, source="test")
    assert taken.value.account_id == created.id


def test_rewrap_moves_account_identifiers_to_the_newest_key(accounts: Accounts, identities: Identities,
                                                            engine: Engine) -> None:
    person = _person(accounts, "rotated")
    identities.bind_person(person, NUMBER, level=2, source="test")
    enterprise = identities.create_enterprise(CODE, name="示例", level=2, source="test").id
    newer = PiiVault(MASTER, "sm4-gcm", 2)
    moved = rewrap(engine, newer, batch_size=1)
    # at least ours: other tests sharing the session's database may have sealed values too
    assert moved["account.id_number_sealed"] >= 1 and moved["account.credit_code_sealed"] >= 1
    rotated = Identities(engine, newer)
    assert rotated.id_number(person).reveal() == NUMBER.reveal()
    assert rotated.credit_code(enterprise).reveal() == CODE.reveal()
    with engine.connect() as connection:
        key_ids = connection.execute(text("SELECT id_number_key_id, credit_code_key_id FROM account "
                                          "WHERE id IN (:a, :b)"), {"a": person, "b": enterprise}).all()
    assert sorted(key_ids, key=str) == sorted([("sm4-gcm/2", None), (None, "sm4-gcm/2")], key=str)
    again = rewrap(engine, newer)
    assert (again["account.id_number_sealed"], again["account.credit_code_sealed"]) == (0, 0)
