"""`yihao check id-number|credit-code`: the verdict, the reason in both languages, the exit status."""
from __future__ import annotations

import json

import pytest

from tests.live import yihao


def _check(*args: str) -> tuple[int, str]:
    result = yihao({}, "check", *args)
    assert result.stderr == ""
    return result.returncode, result.stdout


def test_a_valid_id_number_prints_masked_with_its_facts() -> None:
    status, out = _check("id-number", "350102199003070012")
    assert status == 0
    assert out.splitlines() == ["valid: 3501**********0012 (居民身份证 / resident identity card)",
                                "  document_type: resident", "  sex: M", "  province: 35",
                                "  converted_from_15: False"]


def test_json_leaves_out_what_would_rebuild_the_number_next_to_the_mask() -> None:
    status, out = _check("id-number", "35010420000229002X", "--json")
    assert status == 0
    assert json.loads(out) == {"valid": True, "reason": None, "value": "3501**********002X",
                               "document_type": "resident", "sex": "F", "province": "35",
                               "converted_from_15": False, "warnings": []}


def test_reveal_prints_the_normalised_number_and_every_fact() -> None:
    status, out = _check("id-number", "110105491231002", "--json", "--reveal")
    facts = json.loads(out)
    assert status == 0
    assert (facts["value"], facts["birth_date"], facts["division_code"], facts["converted_from_15"]) == (
        "11010519491231002X", "1949-12-31", "110105", True)


@pytest.mark.parametrize(("value", "code", "zh", "en"), [
    ("350102199003070013", "check_character", "第18位校验码应为 2", "the check character (18th) should be 2"),
    ("35010320050229002X", "birth_date", "出生日期 2005-02-29 不是有效日期", "the birth date 2005-02-29 is not a real date"),
    ("3501021990030700", "format", "身份号码应为18位（旧号码为15位），输入的是 16 位",
     "an identity number has 18 characters (15 for old numbers); 16 were entered"),
])
def test_an_invalid_id_number_exits_1_with_the_reason(value: str, code: str, zh: str, en: str) -> None:
    status, out = _check("id-number", value, "--json")
    assert status == 1
    reason = json.loads(out)["reason"]
    assert (json.loads(out)["valid"], reason["code"], reason["zh"], reason["en"]) == (False, code, zh, en)
    assert _check("id-number", value)[1].strip() == f"invalid: {zh} / {en}"


def test_a_valid_credit_code_prints_whole_with_authority_and_category() -> None:
    status, out = _check("credit-code", "91350102MA2Y0001X6", "--json")
    facts = json.loads(out)
    assert status == 0
    assert (facts["value"], facts["authority_name"], facts["category_name"], facts["organisation_code"]) == (
        "91350102MA2Y0001X6", "市场监管", "企业", "MA2Y0001X")


@pytest.mark.parametrize(("value", "code", "en"), [
    ("91350102MA2Y0001X7", "check_character", "the check character (18th) should be 6"),
    ("91350102MA2Y0O01X6", "charset", "the character O at position 14 is not allowed (I, O, Z, S and V are never used)"),
    ("91350102MA2Y0002X6", "organisation_check",
     "the organisation-code check character (17th) should be 8"),
])
def test_an_invalid_credit_code_exits_1_with_the_reason(value: str, code: str, en: str) -> None:
    status, out = _check("credit-code", value, "--json")
    reason = json.loads(out)["reason"]
    assert (status, reason["code"], reason["en"]) == (1, code, en)
