"""Unified social credit codes (统一社会信用代码, GB 32100-2015): normalise, parse, validate.

Two check characters protect a code: pos 17 closes the embedded GB 11714 organisation code
(pos 9–17) and pos 18 closes the whole code. A validator that checks only pos 18 accepts codes it
must reject. Pure functions, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from realname.errors import ValidationError
from realname.idnumber import mask

# GB 32100-2015 §4.2: 31 characters, never I, O, Z, S, V (too easily confused).
CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_INDEX = {c: i for i, c in enumerate(CHARSET)}
# GB 32100-2015 §5: weight of position i is 3^(i-1) mod 31.
WEIGHTS = tuple(pow(3, i, 31) for i in range(17))
# GB 11714-1997: weights over the 8 body characters of the organisation code.
ORGANISATION_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)

# GB 32100-2015 Table 1. Other authorities exist since (the table keeps growing): an unknown one
# is a warning, never a rejection.
AUTHORITIES = {"1": "机构编制", "5": "民政", "9": "市场监管", "Y": "其他"}
CATEGORIES = {
    "11": "机关",
    "12": "事业单位",
    "13": "中央编办直接管理机构编制的群众团体",
    "19": "其他",
    "51": "社会团体",
    "52": "民办非企业单位",
    "53": "基金会",
    "59": "其他",
    "91": "企业",
    "92": "个体工商户",
    "93": "农民专业合作社",
    "Y1": "其他",
}

_FULL_WIDTH = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)}


class CreditCodeError(ValidationError):
    """A credit code failed validation; ``code`` is stable, ``position`` is 1-based when known."""


@dataclass(frozen=True, repr=False)
class ParsedCreditCode:
    """A valid credit code; prints masked (``9135**********01X6``), ``value`` is the full one."""

    value: str
    authority: str
    category: str
    division_code: str
    organisation_code: str
    warnings: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"ParsedCreditCode({mask(self.value)!r}, category={self.category!r})"

    def __str__(self) -> str:
        return mask(self.value)


def normalise(raw: str) -> str:
    """Strip all whitespace, turn full-width characters into ASCII, upper-case letters."""
    return "".join(raw.split()).translate(_FULL_WIDTH).upper()


def check_character(first17: str) -> str:
    """The pos-18 check character (GB 32100-2015 §5, MOD 31) for 17 charset characters."""
    if len(first17) != 17 or any(c not in _INDEX for c in first17):
        raise ValueError("check_character needs exactly 17 characters of the GB 32100 charset")
    total = sum(_INDEX[c] * w for c, w in zip(first17, WEIGHTS))
    return CHARSET[(31 - total % 31) % 31]


def organisation_check_character(eight: str) -> str:
    """The GB 11714 check character (``0``–``9`` or ``X``) of an organisation code's 8 body chars.

    Letters count A=10 … Z=35 (their place in the Latin alphabet, not in the GB 32100 charset).
    """
    if len(eight) != 8 or any(not ("0" <= c <= "9" or "A" <= c <= "Z") for c in eight):
        raise ValueError("organisation_check_character needs exactly 8 characters 0-9/A-Z")
    total = sum(int(c, 36) * w for c, w in zip(eight, ORGANISATION_WEIGHTS))
    c = 11 - total % 11
    return {10: "X", 11: "0"}.get(c, str(c))


def parse_credit_code(raw: str) -> ParsedCreditCode:
    """Check length, charset, then the pos-17 and pos-18 check characters; first failure wins."""
    value = normalise(raw)
    _check_format(value)
    expected = organisation_check_character(value[8:16])
    if value[16] != expected:
        raise CreditCodeError(
            "organisation_check",
            f"第17位（组织机构代码校验码）应为 {expected}",
            f"the organisation-code check character (17th) should be {expected}",
            expected=expected,
            position=17,
        )
    expected = check_character(value[:17])
    if value[17] != expected:
        raise CreditCodeError(
            "check_character",
            f"第18位校验码应为 {expected}",
            f"the check character (18th) should be {expected}",
            expected=expected,
            position=18,
        )
    return ParsedCreditCode(
        value=value,
        authority=value[0],
        category=value[:2],
        division_code=value[2:8],
        organisation_code=value[8:17],
        warnings=_warnings(value),
    )


def _check_format(value: str) -> None:
    if not value:
        raise CreditCodeError("empty", "请输入统一社会信用代码", "please enter the credit code")
    if len(value) != 18:
        raise CreditCodeError(
            "length",
            f"统一社会信用代码应为18位，输入的是 {len(value)} 位",
            f"a unified social credit code has 18 characters; {len(value)} were entered",
        )
    for i, c in enumerate(value, start=1):
        if c not in _INDEX:
            raise CreditCodeError(
                "charset",
                f"第{i}位字符 {c} 不在允许的字符集中（不使用 I、O、Z、S、V）",
                f"the character {c} at position {i} is not allowed"
                " (I, O, Z, S and V are never used)",
                position=i,
            )


def _warnings(value: str) -> tuple[str, ...]:
    authority, category, division = value[0], value[:2], value[2:8]
    warnings = []
    if authority not in AUTHORITIES:
        warnings.append(
            f"登记管理部门代码 {authority} 不在已知列表中"
            f" / registration authority {authority} is not in the known list"
        )
    elif category not in CATEGORIES:
        warnings.append(
            f"机构类别代码 {category} 不在已知列表中"
            f" / organisation category {category} is not in the known list"
        )
    if not division.isdigit():
        warnings.append(
            f"第3–8位行政区划码 {division} 不全是数字"
            f" / the division code {division} (positions 3–8) is not all digits"
        )
    return tuple(warnings)
