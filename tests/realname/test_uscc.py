"""Unified social credit codes: the reference's vectors, both check characters, warnings."""

from __future__ import annotations

import pickle
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from realname.testdata import make_credit_code
from realname.uscc import (
    CHARSET,
    CreditCodeError,
    check_character,
    normalise,
    organisation_check_character,
    parse_credit_code,
)


def rejection(raw: str) -> CreditCodeError:
    with pytest.raises(CreditCodeError) as info:
        parse_credit_code(raw)
    return info.value


# --- the reference's vectors -------------------------------------------------------------------


def test_enterprise_vector_is_valid() -> None:
    parsed = parse_credit_code("91350102MA2Y0001X6")
    assert (parsed.value, parsed.authority, parsed.category) == ("91350102MA2Y0001X6", "9", "91")
    assert (parsed.division_code, parsed.organisation_code) == ("350102", "MA2Y0001X")
    assert parsed.warnings == ()


def test_individual_business_vector_is_valid() -> None:
    parsed = parse_credit_code("92350102L23456783T")
    assert (parsed.category, parsed.organisation_code, parsed.warnings) == ("92", "L23456783", ())


def test_wrong_18th_character_names_the_expected_one() -> None:
    err = rejection("91350102MA2Y0001X7")
    assert (err.code, err.expected, err.position) == ("check_character", "6", 18)
    assert err.message_zh == "第18位校验码应为 6"
    assert err.message_en == "the check character (18th) should be 6"


def test_letter_o_is_not_in_the_charset() -> None:
    err = rejection("91350102MA2Y0O01X6")
    assert (err.code, err.position, err.expected) == ("charset", 14, None)
    assert err.message_zh == "第14位字符 O 不在允许的字符集中（不使用 I、O、Z、S、V）"
    assert err.message_en == (
        "the character O at position 14 is not allowed (I, O, Z, S and V are never used)"
    )


def test_check_characters_of_the_vectors() -> None:
    assert organisation_check_character("MA2Y0001") == "X"
    assert organisation_check_character("L2345678") == "3"
    assert check_character("91350102MA2Y0001X") == "6"
    assert check_character("92350102L23456783") == "T"


def test_organisation_letters_count_by_alphabet_place_not_charset_index() -> None:
    # GB 11714: Y = 34 (its place in A–Z), not 29 (its index in the GB 32100 charset).
    # 11 - (34 * 2) % 11 = 9, whereas the charset index would give 11 - (29 * 2) % 11 = 8.
    assert organisation_check_character("0000000Y") == "9"


@pytest.mark.parametrize(
    ("eight", "expected"),
    [("00000006", "X"), ("00000000", "0"), ("0000000B", "0"), ("00000005", "1")],
)
def test_organisation_check_maps_10_to_x_and_11_to_0(eight: str, expected: str) -> None:
    # 6 * 2 = 12 ≡ 1 → 11 - 1 = 10 → X; B = 11, 11 * 2 = 22 ≡ 0 → 11 → 0.
    assert organisation_check_character(eight) == expected


@pytest.mark.parametrize("bad", ["1234567", "123456789", "1234567a", "1234567-"])
def test_organisation_check_character_needs_8_alphanumerics(bad: str) -> None:
    with pytest.raises(ValueError):
        organisation_check_character(bad)


@pytest.mark.parametrize("bad", ["91350102MA2Y0001", "91350102MA2Y0O01X"])
def test_check_character_needs_17_charset_characters(bad: str) -> None:
    with pytest.raises(ValueError):
        check_character(bad)


# --- each rule: code and both messages ---------------------------------------------------------


@pytest.mark.parametrize("raw", ["", " \t\u3000"])
def test_empty_input_is_reported_as_empty(raw: str) -> None:
    err = rejection(raw)
    assert (err.code, err.position) == ("empty", None)
    assert (err.message_zh, err.message_en) == ("请输入统一社会信用代码", "please enter the credit code")


def test_wrong_length_says_how_many_characters_were_entered() -> None:
    err = rejection("91350102MA2Y0001X")
    assert err.code == "length"
    assert err.message_zh == "统一社会信用代码应为18位，输入的是 17 位"
    assert err.message_en == "a unified social credit code has 18 characters; 17 were entered"


@pytest.mark.parametrize(
    ("raw", "position", "char"), [("9135-102MA2Y0001X6", 5, "-"), ("91350102MA2Y0001XS", 18, "S")]
)
def test_a_character_outside_the_charset_is_named_by_position(
    raw: str, position: int, char: str
) -> None:
    err = rejection(raw)
    assert (err.code, err.position) == ("charset", position)
    assert err.message_zh == f"第{position}位字符 {char} 不在允许的字符集中（不使用 I、O、Z、S、V）"


def test_a_code_with_a_correct_18th_but_a_wrong_17th_character_is_rejected() -> None:
    # The reference's warning: checking pos 18 alone would accept this code.
    assert check_character("91350102MA2Y00010") == "C"
    err = rejection("91350102MA2Y00010C")
    assert (err.code, err.expected, err.position) == ("organisation_check", "X", 17)
    assert err.message_zh == "第17位（组织机构代码校验码）应为 X"
    assert err.message_en == "the organisation-code check character (17th) should be X"


def test_the_17th_character_is_checked_before_the_18th() -> None:
    assert rejection("91350102MA2Y00010D").code == "organisation_check"


def test_the_charset_is_checked_before_the_check_characters() -> None:
    assert rejection("91350102MA2Y0I01X7").code == "charset"


# --- normalisation and warnings ----------------------------------------------------------------


def test_lower_case_full_width_and_spaces_are_normalised() -> None:
    assert normalise(" 9135 0102ｍａ２ｙ　0001x6\n") == "91350102MA2Y0001X6"
    assert parse_credit_code("91350102ma2y0001x6").value == "91350102MA2Y0001X6"


def test_unknown_authority_is_a_warning_not_a_rejection() -> None:
    parsed = parse_credit_code("31350102MA2Y0001XC")
    assert parsed.warnings == (
        "登记管理部门代码 3 不在已知列表中 / registration authority 3 is not in the known list",
    )


def test_unknown_category_of_a_known_authority_is_a_warning() -> None:
    parsed = parse_credit_code("94350102MA2Y0001XW")
    assert parsed.warnings == (
        "机构类别代码 94 不在已知列表中 / organisation category 94 is not in the known list",
    )


def test_letters_in_the_division_code_are_a_warning() -> None:
    parsed = parse_credit_code("91ABCDEFMA2Y0001X5")
    assert parsed.warnings == (
        "第3–8位行政区划码 ABCDEF 不全是数字"
        " / the division code ABCDEF (positions 3–8) is not all digits",
    )


def test_other_authority_y_is_known() -> None:
    assert parse_credit_code("Y1350102MA2Y0001XG").warnings == ()


# --- masking -----------------------------------------------------------------------------------


def test_parsed_code_prints_masked() -> None:
    parsed = parse_credit_code("91350102MA2Y0001X6")
    assert str(parsed) == "9135**********01X6"
    assert repr(parsed) == "ParsedCreditCode('9135**********01X6', category='91')"
    assert "91350102MA2Y0001X6" not in repr([parsed])


@pytest.mark.parametrize("raw", ["91350102MA2Y0001X7", "91350102MA2Y0O01X6", "91350102MA2Y00010C"])
def test_errors_never_hold_the_full_code(raw: str) -> None:
    err = rejection(raw)
    for text in (str(err), repr(err), err.message_zh, err.message_en):
        assert raw not in text


def test_errors_survive_pickling() -> None:
    err = pickle.loads(pickle.dumps(rejection("91350102MA2Y0001X7")))
    assert (err.code, err.expected, err.position) == ("check_character", "6", 18)


# --- generated codes ---------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.randoms(use_true_random=False))
def test_generated_codes_are_valid(rng: random.Random) -> None:
    raw = make_credit_code(rng)
    parsed = parse_credit_code(raw)
    assert (parsed.value, parsed.warnings) == (raw, ())


@settings(max_examples=200, deadline=None)
@given(st.randoms(use_true_random=False))
def test_every_single_character_substitution_is_rejected(rng: random.Random) -> None:
    # MOD 31: 31 is prime and every weight 3^k is non-zero mod 31, so pos 18 catches any change
    # even where GB 11714's MOD 11 cannot (e.g. 0 ↔ B, whose values differ by 11).
    raw = make_credit_code(rng)
    for i, original in enumerate(raw):
        for c in CHARSET:
            if c != original:
                with pytest.raises(CreditCodeError):
                    parse_credit_code(raw[:i] + c + raw[i + 1 :])


@settings(max_examples=50, deadline=None)
@given(st.randoms(use_true_random=False), st.integers(0, 17), st.sampled_from("IOZSV"))
def test_the_five_excluded_letters_are_rejected_anywhere(
    rng: random.Random, i: int, c: str
) -> None:
    raw = make_credit_code(rng)
    err = rejection(raw[:i] + c + raw[i + 1 :])
    assert (err.code, err.position) == ("charset", i + 1)
