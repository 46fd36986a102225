"""Resident identity numbers (公民身份号码, GB 11643-1999): normalise, parse, validate, mask.

Pure functions, no I/O. Also covers the documents that reuse the same number scheme: Hong Kong,
Macao and Taiwan residence permits (prefixes 810000/820000/830000) and the 2023 foreigner
permanent-residence ID (leading 9). See /work/shared/reference/identity-numbers.md.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass
from datetime import date
from typing import Literal

from realname.errors import ValidationError

DocumentType = Literal["resident", "hk_macao_taiwan_permit", "foreign_permanent_resident"]

# GB 11643-1999 §8.2: ISO 7064 MOD 11-2 weights over the first 17 digits; X stands for 10.
WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARACTERS = "10X98765432"

# Province-level codes of GB/T 2260 (plus 71 Taiwan, 81 Hong Kong, 82 Macao, 83 residence permits).
PROVINCES = frozenset(
    f"{n:02d}"
    for lo, hi in ((11, 15), (21, 23), (31, 37), (41, 46), (50, 54), (61, 65), (71, 71), (81, 83))
    for n in range(lo, hi + 1)
)
PERMIT_PREFIXES = frozenset({"810000", "820000", "830000"})
MAX_AGE = 130

# Full-width ASCII (U+FF01–U+FF5E) → ASCII; the forms an IME produces for digits and letters.
_FULL_WIDTH = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)}
_DIGITS = frozenset("0123456789")


class IdNumberError(ValidationError):
    """An identity number failed validation; ``code`` is stable, the messages are for people.

    The messages name the failing part (a position, the birth date, the province digits), never
    the whole number, so ``str(err)`` is safe to show and to log.
    """


@dataclass(frozen=True, repr=False)
class ParsedIdNumber:
    """A valid identity number; prints masked (``3501**********0012``), ``value`` is the full one.

    ``division_code`` is the 6-digit address code; for a foreigner permanent-residence ID it is
    the issuing province (digits 2–3) followed by ``0000``.
    """

    value: str
    original: str
    birth_date: date
    sex: Literal["M", "F"]
    division_code: str
    document_type: DocumentType
    converted_from_15: bool
    warnings: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"ParsedIdNumber({mask(self.value)!r}, document_type={self.document_type!r})"

    def __str__(self) -> str:
        return mask(self.value)


def mask(value: str) -> str:
    """Keep the first 4 and last 4 characters (``3501**********0012``); all stars when ≤ 8 long."""
    if len(value) <= 8:
        return "*" * len(value)
    return value[:4] + "*" * (len(value) - 8) + value[-4:]


def normalise(raw: str) -> str:
    """Strip all whitespace, turn full-width characters into ASCII, upper-case a trailing x."""
    text = "".join(raw.split()).translate(_FULL_WIDTH)
    return text[:-1] + "X" if text.endswith("x") else text


def check_character(first17: str) -> str:
    """The MOD 11-2 check character (``0``–``9`` or ``X``) for 17 digits."""
    if len(first17) != 17 or not set(first17) <= _DIGITS:
        raise ValueError("check_character needs exactly 17 ASCII digits")
    return CHECK_CHARACTERS[sum(int(c) * w for c, w in zip(first17, WEIGHTS)) % 11]


def parse_id_number(
    raw: str, *, today: date | None = None, divisions: Container[str] | None = None
) -> ParsedIdNumber:
    """Validate in the reference's order (format, birth date, province, check character).

    Raises IdNumberError for the first failure. ``divisions``, when given, is a table of known
    6-digit division codes; an unknown code is a warning, never a rejection (codes abolished
    since issue stay valid).
    """
    original = normalise(raw)
    value, converted = _check_format(original)
    birth = _check_birth_date(value, today or date.today())
    document_type = _document_type(value, converted)
    _check_province(value, document_type)
    expected = check_character(value[:17])
    if value[17] != expected:
        raise IdNumberError(
            "check_character",
            f"第18位校验码应为 {expected}",
            f"the check character (18th) should be {expected}",
            expected=expected,
            position=18,
        )
    division = value[1:3] + "0000" if document_type == "foreign_permanent_resident" else value[:6]
    warnings: tuple[str, ...] = ()
    if divisions is not None and division not in divisions:
        warnings = (f"行政区划代码 {division} 不在区划表中 / division code {division} is not in the table",)
    return ParsedIdNumber(
        value=value,
        original=original,
        birth_date=birth,
        sex="M" if int(value[16]) % 2 else "F",
        division_code=division,
        document_type=document_type,
        converted_from_15=converted,
        warnings=warnings,
    )


def _format_error(zh: str, en: str, position: int | None = None) -> IdNumberError:
    return IdNumberError("format", zh, en, position=position)


def _check_format(text: str) -> tuple[str, bool]:
    """Return the 18-character number and whether it was converted from the 15-digit form."""
    if not text:
        raise IdNumberError("empty", "请输入身份号码", "please enter the identity number")
    if len(text) not in (15, 18):
        raise _format_error(
            f"身份号码应为18位（旧号码为15位），输入的是 {len(text)} 位",
            f"an identity number has 18 characters (15 for old numbers); {len(text)} were entered",
        )
    digits = 15 if len(text) == 15 else 17
    for i, c in enumerate(text[:digits], start=1):
        if c not in _DIGITS:
            raise _format_error(f"第{i}位字符 {c} 应为数字", f"character {i} ({c}) should be a digit", i)
    if len(text) == 18 and text[17] not in _DIGITS | {"X"}:
        raise _format_error(
            f"第18位字符 {text[17]} 应为数字或 X",
            f"character 18 ({text[17]}) should be a digit or X",
            18,
        )
    converted = len(text) == 15
    if converted:
        # GB 11643-1999 §C: an old (GB 11643-1989) number gains the century 19 and a check digit.
        body = text[:6] + "19" + text[6:]
        text = body + check_character(body)
    if text[0] == "0":
        raise _format_error("第1位不能为 0", "the first digit cannot be 0", 1)
    if text[6:8] not in ("18", "19", "20"):
        raise _format_error(
            f"出生年份 {text[6:10]} 应在 1800 至 2099 之间",
            f"the birth year {text[6:10]} should be between 1800 and 2099",
            7,
        )
    if not 1 <= int(text[10:12]) <= 12:
        raise _format_error(
            f"出生月份 {text[10:12]} 无效（应为 01 至 12）",
            f"the birth month {text[10:12]} is not valid (01 to 12)",
            11,
        )
    return text, converted


def _check_birth_date(value: str, today: date) -> date:
    shown = f"{value[6:10]}-{value[10:12]}-{value[12:14]}"
    try:
        birth = date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        raise IdNumberError(
            "birth_date", f"出生日期 {shown} 不是有效日期", f"the birth date {shown} is not a real date"
        ) from None
    if birth > today:
        raise IdNumberError(
            "future_birth_date",
            f"出生日期 {shown} 晚于今天",
            f"the birth date {shown} is in the future",
        )
    age = today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))
    if age > MAX_AGE:
        raise IdNumberError(
            "too_old",
            f"出生日期 {shown} 表示年龄超过 {MAX_AGE} 岁",
            f"the birth date {shown} means an age over {MAX_AGE}",
        )
    return birth


def _document_type(value: str, converted: bool) -> DocumentType:
    if value[:6] in PERMIT_PREFIXES:
        return "hk_macao_taiwan_permit"
    # 15-digit numbers predate the foreigner ID, so a leading 9 there is just a bad province.
    if value[0] == "9" and not converted:
        return "foreign_permanent_resident"
    return "resident"


def _check_province(value: str, document_type: DocumentType) -> None:
    if document_type == "foreign_permanent_resident":
        # 2023 foreigner permanent-residence ID: 9, then the issuing office's province (digits 2–3).
        if value[1:3] not in PROVINCES:
            raise IdNumberError(
                "province",
                f"第2–3位 {value[1:3]} 不是有效的省级行政区划代码（以 9 开头的是外国人永久居留身份证号码）",
                f"digits 2–3 ({value[1:3]}) are not a valid province code"
                " (a number starting with 9 is a foreigner permanent-residence ID)",
                position=2,
            )
    elif value[:2] not in PROVINCES:
        raise IdNumberError(
            "province",
            f"前两位 {value[:2]} 不是有效的省级行政区划代码",
            f"the first two digits {value[:2]} are not a valid province code",
            position=1,
        )
