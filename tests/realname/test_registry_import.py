"""`yihao registry import` into the local registries, and verification against what it imported."""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, text

from idp.crypto import b64u
from realname.pii import CreditCode, IdNumber, PiiVault
from realname.registry.local import LocalEntityRegistry, LocalPopulationRegistry
from tests.conftest import Backend
from tests.live import yihao

PEOPLE = """name,id_number
张三,350102199003070012
李四,35010420000229002X
王五,350102199003070013
赵六
,11010519491231002X
阿依古丽·买买提,110105491231002
"""
ENTITIES = """credit_code,name,legal_representative,status
91350102MA2Y0001X6,福州示例科技有限公司,张三,存续
92350102L23456783T,某某小吃店,李四,吊销
91350102MA2Y0O01X6,坏代码,王五,active
91350102MA2Y0001X6,福州示例科技有限公司,张三,unknown
"""


def _run(backend: Backend, tmp_path: Path, name: str, content: str, *args: str):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    env = {"YIHAO_DATABASE_URL": backend.database_url, "YIHAO_VAR_DIR": str(tmp_path),
           "YIHAO_MASTER_KEY": b64u(b"k" * 32), "YIHAO_LOG_LEVEL": "WARNING"}
    return yihao(env, "registry", "import", str(path), *args)


def test_bad_rows_are_reported_by_line_and_reason_and_the_rest_is_imported(
        backend: Backend, engine: Engine, vault: PiiVault, tmp_path: Path) -> None:
    result = _run(backend, tmp_path, "people.csv", PEOPLE)
    assert result.returncode == 1  # finished, but some rows were skipped
    assert result.stderr.splitlines() == [
        "line 4: id_number: 第18位校验码应为 2 / the check character (18th) should be 2",
        "line 5: 应有 2 列，实有 1 列 / expected 2 fields, got 1",
        "line 6: name: 为空 / is empty",
    ]
    assert result.stdout.startswith("people: 6 rows read, 3 imported, 3 skipped in ")
    assert "350102199003070013" not in result.stderr + result.stdout


def test_imported_people_verify_by_name_and_number(backend: Backend, engine: Engine, vault: PiiVault,
                                                   tmp_path: Path) -> None:
    _run(backend, tmp_path, "people.csv", PEOPLE)
    registry = LocalPopulationRegistry(engine, vault)
    assert registry.verify("张三", IdNumber.parse("350102199003070012")).outcome == "match"
    assert registry.verify("李四", IdNumber.parse("350102199003070012")).outcome == "mismatch"
    assert registry.verify("阿依古丽•买买提", IdNumber.parse("11010519491231002X")).outcome == "match"
    assert registry.verify("张三", IdNumber.parse("11010519491231002X")).outcome == "mismatch"
    assert registry.verify("张三", IdNumber.parse("350102199003070020")).outcome == "not_found"


def test_a_re_import_updates_in_place(backend: Backend, engine: Engine, vault: PiiVault, tmp_path: Path) -> None:
    _run(backend, tmp_path, "people.csv", PEOPLE)
    again = _run(backend, tmp_path, "renamed.csv", "id_number,name\n350102199003070012,张三丰\n")
    assert again.returncode == 0, again.stderr
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM registry_person")).scalar() == 3
    assert LocalPopulationRegistry(engine, vault).verify("张三丰", IdNumber.parse("350102199003070012")).outcome == "match"


def test_start_line_continues_an_interrupted_import(backend: Backend, engine: Engine, tmp_path: Path) -> None:
    result = _run(backend, tmp_path, "people.csv", PEOPLE, "--start-line", "7")
    assert result.returncode == 0 and result.stdout.startswith("people: 1 rows read, 1 imported, 0 skipped")


def test_entities_are_detected_from_the_header_and_looked_up(backend: Backend, engine: Engine, vault: PiiVault,
                                                            tmp_path: Path) -> None:
    result = _run(backend, tmp_path, "entities.csv", ENTITIES)
    assert result.stderr.splitlines()[0].startswith("line 4: credit_code: 第14位字符 O 不在允许的字符集中")
    assert result.stderr.splitlines()[1].startswith("line 5: status: 应为 active | 存续")
    registry = LocalEntityRegistry(engine, vault)
    found = registry.lookup(CreditCode.parse("91350102MA2Y0001X6"))
    assert (found.outcome, found.name, found.legal_representative, found.status) == (
        "match", "福州示例科技有限公司", "张三", "active")
    assert registry.lookup(CreditCode.parse("92350102L23456783T")).status == "revoked"
    assert registry.lookup(CreditCode.parse("92350102L23456783T"), name="别的店").outcome == "mismatch"
    with engine.connect() as connection:
        sealed = connection.execute(text("SELECT credit_code_sealed FROM registry_entity")).scalars().all()
    assert all(b"91350102MA2Y0001X6" not in bytes(s) for s in sealed)


def test_an_unknown_header_is_refused_with_the_columns_it_needs(backend: Backend, engine: Engine,
                                                              tmp_path: Path) -> None:
    result = _run(backend, tmp_path, "odd.csv", "foo,bar\n1,2\n")
    assert result.returncode == 1
    assert result.stderr.strip() == ("yihao: the header needs the columns name,id_number or "
                                     "credit_code,name,legal_representative,status")


def test_rewrap_moves_imported_rows_to_a_new_key_version(backend: Backend, engine: Engine, tmp_path: Path) -> None:
    _run(backend, tmp_path, "people.csv", PEOPLE)
    env = {"YIHAO_DATABASE_URL": backend.database_url, "YIHAO_VAR_DIR": str(tmp_path),
           "YIHAO_MASTER_KEY": b64u(b"k" * 32), "YIHAO_PII_KEY_VERSION": "2", "YIHAO_PII_CIPHER": "sm4-gcm"}
    result = yihao(env, "keys", "rewrap")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "registry_person.id_number_sealed: 3 rows moved to sm4-gcm/2"
    with engine.connect() as connection:
        assert connection.execute(text("SELECT DISTINCT key_id FROM registry_person")).scalars().all() == ["sm4-gcm/2"]


def test_a_line_the_csv_reader_cannot_parse_is_reported_and_skipped(backend: Backend, engine: Engine,
                                                                      tmp_path: Path) -> None:
    huge = "x" * 200_000
    result = _run(backend, tmp_path, "people.csv",
                  f"name,id_number\n{huge},350102199003070012\n张\x00三,35010420000229002X\n李四,35010420000229002X\n")
    assert result.stderr.splitlines() == [
        "line 2: 不是有效的 CSV / not valid CSV (field larger than field limit (131072))",
        "line 3: name: 含有控制字符 / contains control characters"]
    assert result.stdout.startswith("people: 3 rows read, 1 imported, 2 skipped")


def test_a_file_that_is_not_utf8_stops_with_one_line(backend: Backend, engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "gbk.csv"
    path.write_bytes("name,id_number\n张三,350102199003070012\n".encode("gbk"))
    env = {"YIHAO_DATABASE_URL": backend.database_url, "YIHAO_VAR_DIR": str(tmp_path),
           "YIHAO_MASTER_KEY": b64u(b"k" * 32)}
    result = yihao(env, "registry", "import", str(path))
    assert result.returncode == 1
    assert result.stderr.strip() == f"yihao: {path} is not UTF-8 text; rows before the bad bytes were imported"
