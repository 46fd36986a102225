"""Identifiers at rest: masked everywhere, sealed to their row, found by blind index, rewrapped."""
from __future__ import annotations

import json
import logging
import pickle

import pytest
from cryptography.exceptions import InvalidTag
from sqlalchemy import Engine, text

from idp.logs import JsonFormatter
from realname.pii import CreditCode, IdNumber, PiiVault, Sealed
from realname.registry.importer import Importer
from realname.rewrap import rewrap
from tests.realname.conftest import MASTER

NUMBER = "350102199003070012"
PEOPLE = "name,id_number\n张三,350102199003070012\n李四,35010420000229002X\n"


def test_an_id_number_masks_itself_in_str_repr_format_and_f_strings() -> None:
    number = IdNumber.parse(NUMBER)
    shown = [str(number), f"{number}", f"{number:>20}".strip(), "%s" % number, repr(number), str([number])]
    assert shown[:4] == ["3501**********0012"] * 4
    assert repr(number) == "IdNumber('3501**********0012')"
    assert all(NUMBER not in s for s in shown)
    assert number.reveal() == NUMBER


def test_a_credit_code_masks_itself_the_same_way() -> None:
    assert str(CreditCode.parse("91350102MA2Y0001X6")) == "9135**********01X6"


def test_log_records_and_json_logs_hold_only_the_mask(caplog: pytest.LogCaptureFixture) -> None:
    number = IdNumber.parse(NUMBER)
    with caplog.at_level(logging.INFO, logger="yihao.test"):
        logging.getLogger("yihao.test").info("verifying %s", number, extra={"id_number": number})
    record = caplog.records[0]
    assert record.getMessage() == "verifying 3501**********0012"
    line = JsonFormatter().format(record)
    assert NUMBER not in line and json.loads(line)["id_number"] == "3501**********0012"


def test_plain_json_and_pickle_refuse_the_value_instead_of_leaking_it() -> None:
    number = IdNumber.parse(NUMBER)
    with pytest.raises(TypeError):
        json.dumps({"n": number})
    with pytest.raises(TypeError):
        pickle.dumps(number)


def test_parse_normalises_before_it_masks() -> None:
    assert IdNumber.parse(" 110105491231002 ") == IdNumber.parse("11010519491231002x")


@pytest.mark.parametrize("cipher", ["aes-256-gcm", "sm4-gcm"])
def test_a_sealed_value_opens_only_in_its_own_row(cipher: str) -> None:
    vault = PiiVault(MASTER, cipher)
    sealed = vault.seal(IdNumber.parse(NUMBER), table="registry_person", column="id_number_sealed", row_id="a")
    assert sealed.key_id == f"{cipher}/1" and NUMBER.encode() not in sealed.blob
    opened = vault.open(sealed, IdNumber, table="registry_person", column="id_number_sealed", row_id="a")
    assert opened.reveal() == NUMBER
    with pytest.raises(InvalidTag):
        vault.open(sealed, IdNumber, table="registry_person", column="id_number_sealed", row_id="b")
    with pytest.raises(InvalidTag):
        vault.open(sealed, IdNumber, table="registry_entity", column="id_number_sealed", row_id="a")


def test_the_blind_index_is_keyed_not_a_plain_hash() -> None:
    number = IdNumber.parse(NUMBER)
    other_master = PiiVault(type(MASTER)("other", b"o" * 32))
    assert PiiVault(MASTER).blind_index(number) == PiiVault(MASTER, "sm4-gcm", 7).blind_index(number)
    assert PiiVault(MASTER).blind_index(number) != other_master.blind_index(number)


def _import(engine: Engine, vault: PiiVault, csv_text: str) -> None:
    import io

    Importer(engine, vault).run(io.StringIO(csv_text))


def _rows(engine: Engine) -> list:
    with engine.connect() as connection:
        return connection.execute(text("SELECT blind_index, id_number_sealed, key_id, name_digest "
                                       "FROM registry_person ORDER BY blind_index")).all()


def test_the_database_holds_no_plaintext_and_the_blind_index_finds_the_row(engine: Engine, vault: PiiVault) -> None:
    _import(engine, vault, PEOPLE)
    rows = _rows(engine)
    assert len(rows) == 2
    dump = b"".join(bytes(cell) if isinstance(cell, (bytes, memoryview)) else cell.encode() for row in rows
                    for cell in row)
    for secret in (b"350102199003070012", b"35010420000229002X", "张三".encode(), "李四".encode()):
        assert secret not in dump
    index = vault.blind_index(IdNumber.parse(NUMBER))
    row = next(r for r in rows if bytes(r.blind_index) == index)
    sealed = Sealed(row.key_id, bytes(row.id_number_sealed))
    assert vault.open(sealed, IdNumber, table="registry_person", column="id_number_sealed",
                      row_id=index.hex()).reveal() == NUMBER


def test_ciphertext_swapped_between_rows_does_not_open(engine: Engine, vault: PiiVault) -> None:
    _import(engine, vault, PEOPLE)
    first, second = _rows(engine)
    with engine.begin() as connection:
        connection.execute(text("UPDATE registry_person SET id_number_sealed = :s WHERE blind_index = :b"),
                           {"s": bytes(second.id_number_sealed), "b": bytes(first.blind_index)})
    moved = Sealed(first.key_id, bytes(second.id_number_sealed))
    with pytest.raises(InvalidTag):
        vault.open(moved, IdNumber, table="registry_person", column="id_number_sealed",
                   row_id=bytes(first.blind_index).hex())


def test_rewrap_moves_every_row_to_the_newest_key_and_values_still_open(engine: Engine, vault: PiiVault) -> None:
    _import(engine, vault, PEOPLE)
    _import(engine, vault, "credit_code,name,legal_representative,status\n91350102MA2Y0001X6,示例,张三,active\n")
    newer = PiiVault(MASTER, "sm4-gcm", 2)
    moved = rewrap(engine, newer, batch_size=1)
    assert (moved["registry_person.id_number_sealed"], moved["registry_entity.credit_code_sealed"]) == (2, 1)
    rows = _rows(engine)
    assert {r.key_id for r in rows} == {"sm4-gcm/2"}
    opened = {newer.open(Sealed(r.key_id, bytes(r.id_number_sealed)), IdNumber, table="registry_person",
                         column="id_number_sealed", row_id=bytes(r.blind_index).hex()).reveal() for r in rows}
    assert opened == {"350102199003070012", "35010420000229002X"}
    again = rewrap(engine, newer)
    assert (again["registry_person.id_number_sealed"], again["registry_entity.credit_code_sealed"]) == (0, 0)


def test_rows_under_the_old_and_the_new_key_are_both_readable_during_a_rewrap(engine: Engine, vault: PiiVault) -> None:
    _import(engine, vault, PEOPLE)
    newer = PiiVault(MASTER, "aes-256-gcm", 2)
    _import(engine, newer, "name,id_number\n王五,11010519491231002X\n")
    assert sorted(r.key_id for r in _rows(engine)) == ["aes-256-gcm/1", "aes-256-gcm/1", "aes-256-gcm/2"]
    for row in _rows(engine):
        newer.open(Sealed(row.key_id, bytes(row.id_number_sealed)), IdNumber, table="registry_person",
                   column="id_number_sealed", row_id=bytes(row.blind_index).hex())
