"""Resident identity numbers: the reference's vectors, each rule with its code and messages."""

from __future__ import annotations

import pickle
import random
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from realname.idnumber import (
    IdNumberError,
    ParsedIdNumber,
    check_character,
    mask,
    normalise,
    parse_id_number,
)
from realname.testdata import make_id_number

TODAY = date(2024, 6, 1)


def rejection(raw: str, *, today: date = TODAY) -> IdNumberError:
    with pytest.raises(IdNumberError) as info:
        parse_id_number(raw, today=today)
    return info.value


# --- the reference's vectors -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "birth_date", "sex"),
    [
        ("350102199003070012", date(1990, 3, 7), "M"),
        ("35010420000229002X", date(2000, 2, 29), "F"),
        ("11010519491231002X", date(1949, 12, 31), "F"),
    ],
)
def test_reference_valid_vectors_parse(raw: str, birth_date: date, sex: str) -> None:
    parsed = parse_id_number(raw, today=TODAY)
    assert (parsed.value, parsed.birth_date, parsed.sex) == (raw, birth_date, sex)
    assert (parsed.division_code, parsed.document_type) == (raw[:6], "resident")
    assert (parsed.converted_from_15, parsed.warnings) == (False, ())


def test_fifteen_digit_number_is_converted_and_kept_as_alias() -> None:
    parsed = parse_id_number("110105491231002", today=TODAY)
    assert parsed.value == "11010519491231002X"
    assert parsed.original == "110105491231002"
    assert parsed.converted_from_15 is True
    assert (parsed.birth_date, parsed.sex) == (date(1949, 12, 31), "F")


def test_wrong_check_character_names_the_expected_one() -> None:
    err = rejection("350102199003070013")
    assert (err.code, err.expected, err.position) == ("check_character", "2", 18)
    assert err.message_zh == "第18位校验码应为 2"
    assert err.message_en == "the check character (18th) should be 2"


def test_february_29_of_a_common_year_is_not_a_date() -> None:
    err = rejection("35010320050229002X")
    assert (err.code, err.expected) == ("birth_date", None)
    assert err.message_zh == "出生日期 2005-02-29 不是有效日期"
    assert err.message_en == "the birth date 2005-02-29 is not a real date"


def test_unknown_province_99_is_rejected() -> None:
    # A leading 9 marks a foreigner ID, whose digits 2–3 are the issuing province: 90 is none.
    err = rejection("990102199003070011")
    assert (err.code, err.position) == ("province", 2)
    assert err.message_zh == "第2–3位 90 不是有效的省级行政区划代码（以 9 开头的是外国人永久居留身份证号码）"
    assert err.message_en == (
        "digits 2–3 (90) are not a valid province code"
        " (a number starting with 9 is a foreigner permanent-residence ID)"
    )


def test_check_character_of_the_standards_example_is_x() -> None:
    assert check_character("11010519491231002") == "X"
    assert check_character("35010219900307001") == "2"


def test_check_character_needs_17_digits() -> None:
    with pytest.raises(ValueError):
        check_character("1101051949123100")


# --- each rule: code and both messages ---------------------------------------------------------


@pytest.mark.parametrize("raw", ["", "   ", "\u3000"])
def test_empty_input_is_reported_as_empty(raw: str) -> None:
    err = rejection(raw)
    assert err.code == "empty"
    assert (err.message_zh, err.message_en) == ("请输入身份号码", "please enter the identity number")


def test_wrong_length_says_how_many_characters_were_entered() -> None:
    err = rejection("35010219900307001")
    assert (err.code, err.position) == ("format", None)
    assert err.message_zh == "身份号码应为18位（旧号码为15位），输入的是 17 位"
    assert err.message_en == (
        "an identity number has 18 characters (15 for old numbers); 17 were entered"
    )


def test_a_letter_among_the_first_17_is_named_by_position() -> None:
    err = rejection("3501021990030A0012")
    assert (err.code, err.position) == ("format", 14)
    assert err.message_zh == "第14位字符 A 应为数字"
    assert err.message_en == "character 14 (A) should be a digit"


def test_the_18th_character_is_a_digit_or_x() -> None:
    err = rejection("35010219900307001Y")
    assert (err.code, err.position) == ("format", 18)
    assert err.message_zh == "第18位字符 Y 应为数字或 X"
    assert err.message_en == "character 18 (Y) should be a digit or X"


def test_a_number_cannot_start_with_0() -> None:
    err = rejection("050102199003070012")
    assert (err.code, err.position) == ("format", 1)
    assert (err.message_zh, err.message_en) == ("第1位不能为 0", "the first digit cannot be 0")


def test_birth_year_outside_1800_to_2099_is_a_format_error() -> None:
    err = rejection("350102219003070012")
    assert (err.code, err.position) == ("format", 7)
    assert err.message_zh == "出生年份 2190 应在 1800 至 2099 之间"
    assert err.message_en == "the birth year 2190 should be between 1800 and 2099"


def test_birth_month_13_is_a_format_error() -> None:
    err = rejection("350102199013070012")
    assert (err.code, err.position) == ("format", 11)
    assert err.message_zh == "出生月份 13 无效（应为 01 至 12）"
    assert err.message_en == "the birth month 13 is not valid (01 to 12)"


def test_day_00_is_not_a_date() -> None:
    err = rejection("350102199003000012")
    assert err.code == "birth_date"
    assert err.message_en == "the birth date 1990-03-00 is not a real date"


def test_birth_after_today_is_rejected() -> None:
    err = rejection("350102202406018643", today=date(2024, 5, 31))
    assert err.code == "future_birth_date"
    assert err.message_zh == "出生日期 2024-06-01 晚于今天"
    assert err.message_en == "the birth date 2024-06-01 is in the future"


def test_born_today_is_accepted() -> None:
    assert parse_id_number("350102202406018643", today=date(2024, 6, 1)).birth_date == TODAY


def test_age_130_is_accepted() -> None:
    assert parse_id_number("35010218940601864X", today=TODAY).birth_date == date(1894, 6, 1)


def test_age_131_is_rejected_as_too_old() -> None:
    err = rejection("35010218930601864X")
    assert err.code == "too_old"
    assert err.message_zh == "出生日期 1893-06-01 表示年龄超过 130 岁"
    assert err.message_en == "the birth date 1893-06-01 means an age over 130"


def test_resident_province_is_the_first_two_digits() -> None:
    err = rejection("400102199003070012")
    assert (err.code, err.position) == ("province", 1)
    assert err.message_zh == "前两位 40 不是有效的省级行政区划代码"
    assert err.message_en == "the first two digits 40 are not a valid province code"


def test_old_fifteen_digit_number_starting_with_9_is_a_bad_province() -> None:
    err = rejection("990102900307001")
    assert err.code == "province"
    assert err.message_en == "the first two digits 99 are not a valid province code"


def test_unknown_division_code_is_only_a_warning() -> None:
    parsed = parse_id_number("350102199003070012", today=TODAY, divisions={"110105"})
    assert parsed.warnings == ("行政区划代码 350102 不在区划表中 / division code 350102 is not in the table",)
    assert parse_id_number("350102199003070012", today=TODAY, divisions={"350102"}).warnings == ()


# --- order of the checks -----------------------------------------------------------------------


def test_bad_date_is_reported_before_a_bad_check_character() -> None:
    assert rejection("350103200502290021").code == "birth_date"


def test_bad_province_is_reported_before_a_bad_check_character() -> None:
    assert rejection("400102199003070013").code == "province"


def test_bad_date_is_reported_before_a_bad_province() -> None:
    assert rejection("400103200502290021").code == "birth_date"


def test_format_is_reported_before_the_date() -> None:
    assert rejection("35010320051329002X").code == "format"


# --- normalisation -----------------------------------------------------------------------------


def test_full_width_digits_and_lower_case_x_are_normalised() -> None:
    assert normalise("３５０１０４２０００ ０２２９　００２ｘ") == "35010420000229002X"
    assert parse_id_number("３５０１０４２００００２２９００２ｘ", today=TODAY).value == "35010420000229002X"


def test_lower_case_x_is_normalised_and_spaces_are_stripped() -> None:
    parsed = parse_id_number(" 110105 19491231 002x\n", today=TODAY)
    assert parsed.value == parsed.original == "11010519491231002X"


# --- document types ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "document_type", "division_code"),
    [
        ("810000199003070111", "hk_macao_taiwan_permit", "810000"),
        ("820000199003070121", "hk_macao_taiwan_permit", "820000"),
        ("830000199003070115", "hk_macao_taiwan_permit", "830000"),
        ("911840199003070110", "foreign_permanent_resident", "110000"),
        ("950840199003070125", "foreign_permanent_resident", "500000"),
        ("350102199003070012", "resident", "350102"),
    ],
)
def test_document_type_is_tagged_not_rejected(
    raw: str, document_type: str, division_code: str
) -> None:
    parsed = parse_id_number(raw, today=TODAY)
    assert (parsed.document_type, parsed.division_code) == (document_type, division_code)
    assert parsed.birth_date == date(1990, 3, 7)


def test_foreigner_id_still_needs_its_check_character() -> None:
    err = rejection("911840199003070111")
    assert (err.code, err.expected) == ("check_character", "0")


# --- masking -----------------------------------------------------------------------------------


def test_parsed_number_prints_masked() -> None:
    parsed = parse_id_number("350102199003070012", today=TODAY)
    assert str(parsed) == "3501**********0012"
    assert repr(parsed) == "ParsedIdNumber('3501**********0012', document_type='resident')"
    assert f"{parsed}" == "3501**********0012"


@pytest.mark.parametrize("raw", ["350102199003070012", "110105491231002", "11010519491231002X"])
def test_repr_and_str_never_hold_the_full_number(raw: str) -> None:
    parsed = parse_id_number(raw, today=TODAY)
    for text in (str(parsed), repr(parsed), repr([parsed])):
        assert raw not in text
        assert parsed.value not in text


@pytest.mark.parametrize(
    "raw",
    ["350102199003070013", "35010320050229002X", "990102199003070011", "350102199013070012"],
)
def test_errors_never_hold_the_full_number(raw: str) -> None:
    err = rejection(raw)
    for text in (str(err), repr(err), err.message_zh, err.message_en):
        assert raw not in text


def test_errors_survive_pickling() -> None:
    err = pickle.loads(pickle.dumps(rejection("350102199003070013")))
    assert (err.code, err.expected, err.position) == ("check_character", "2", 18)


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("350102199003070012", "3501**********0012"),
        ("110105491231002", "1101*******1002"),
        ("123456789", "1234*6789"),
        ("12345678", "********"),
        ("", ""),
    ],
)
def test_mask_keeps_four_and_four(value: str, masked: str) -> None:
    assert mask(value) == masked


def test_parsed_number_is_immutable() -> None:
    parsed = parse_id_number("350102199003070012", today=TODAY)
    with pytest.raises(AttributeError):
        parsed.value = "x"  # type: ignore[misc]
    assert isinstance(parsed, ParsedIdNumber)


# --- generated numbers -------------------------------------------------------------------------


def test_generator_honours_birth_and_division() -> None:
    raw = make_id_number(random.Random(7), birth=date(1985, 10, 1), division="310115")
    parsed = parse_id_number(raw, today=TODAY)
    assert (parsed.birth_date, parsed.division_code) == (date(1985, 10, 1), "310115")


@settings(max_examples=200, deadline=None)
@given(st.randoms(use_true_random=False))
def test_generated_numbers_are_valid(rng: random.Random) -> None:
    raw = make_id_number(rng)
    assert parse_id_number(raw).value == raw


@settings(max_examples=200, deadline=None)
@given(st.randoms(use_true_random=False))
def test_every_single_character_substitution_is_rejected(rng: random.Random) -> None:
    # MOD 11-2: 11 is prime and no weight is 0 mod 11, so one changed digit always moves the sum.
    raw = make_id_number(rng)
    for i, original in enumerate(raw):
        for c in "0123456789X":
            if c != original:
                with pytest.raises(IdNumberError):
                    parse_id_number(raw[:i] + c + raw[i + 1 :])
