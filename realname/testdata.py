"""Synthetic, valid identity numbers and credit codes for tests, benchmarks and local registries.

Deterministic for a seeded ``random.Random``; made by the algorithms, so they belong to no one.
"""

from __future__ import annotations

import random
from datetime import date, timedelta

from realname import idnumber, uscc

# Real GB/T 2260 county-level codes, so generated numbers also pass a division-table lookup.
DIVISIONS = (
    "110101", "110105", "310101", "310115", "350102", "350104",
    "330106", "440106", "420106", "510104", "610113", "650102",
)  # fmt: skip
# Fixed so a seed gives the same numbers on any day (valid while today is before 2070).
EARLIEST_BIRTH = date(1940, 1, 1)
LATEST_BIRTH = date(2005, 12, 31)

_ORGANISATION_BODY = uscc.CHARSET  # digits and the letters GB 32100 allows
_CATEGORIES = tuple(uscc.CATEGORIES)


def make_id_number(
    rng: random.Random, *, birth: date | None = None, division: str | None = None
) -> str:
    """A valid 18-character resident identity number (random sex, sequence and check digit)."""
    division = division if division is not None else rng.choice(DIVISIONS)
    if len(division) != 6 or not division.isdigit():
        raise ValueError("division must be 6 digits")
    if birth is None:
        span = (LATEST_BIRTH - EARLIEST_BIRTH).days
        birth = EARLIEST_BIRTH + timedelta(days=rng.randrange(span + 1))
    body = f"{division}{birth:%Y%m%d}{rng.randrange(1000):03d}"
    return body + idnumber.check_character(body)


def make_credit_code(rng: random.Random) -> str:
    """A valid unified social credit code with a known category and both check characters."""
    category = rng.choice(_CATEGORIES)
    organisation = "".join(rng.choice(_ORGANISATION_BODY) for _ in range(8))
    body = category + rng.choice(DIVISIONS) + organisation
    body += uscc.organisation_check_character(organisation)
    return body + uscc.check_character(body)
