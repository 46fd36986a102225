"""Authentication context classes (`acr`): Yihao's ordered assurance levels and how a request is met.

acr = min(identity level, authentication strength) (DESIGN §4). The levels are ordered, so an
authentication at loa/3 also meets a request for loa/2, and is reported as the value requested.
"""
from __future__ import annotations

from dataclasses import dataclass

LEVELS = ("loa/1", "loa/2", "loa/3", "loa/4")
# Password login: identity levels are not recorded yet, so any login is loa/1 (any login, L1).
PASSWORD = "loa/1"
# The strongest acr a fresh login can reach; discovery advertises the levels up to it.
STRONGEST_LOGIN = PASSWORD


def rank(acr: str) -> int:
    """1–4 for a Yihao level, 0 for a value Yihao does not know (which nothing meets)."""
    return LEVELS.index(acr) + 1 if acr in LEVELS else 0


# Authentication strengths, the second term of the minimum (reference "Assurance levels").
ANY_LOGIN, PASSWORD_STRENGTH, MULTI_FACTOR, HARDWARE = 1, 2, 3, 4


def achieved(identity_level: int, strength: int) -> str:
    """The acr a login earns: the weaker of who the account is known to be and how it proved it."""
    return LEVELS[max(1, min(identity_level, strength, len(LEVELS))) - 1]


def supported() -> list[str]:
    return list(LEVELS[:rank(STRONGEST_LOGIN)])


@dataclass(frozen=True)
class AcrRequest:
    """Requested acr values in order of preference; `essential` makes an unmet request an error."""

    values: tuple[str, ...] = ()
    essential: bool = False

    def select(self, achieved: str) -> str | None:
        """The acr to report: the first requested value `achieved` meets, else the achieved acr —
        or None when an essential request is unmet (OIDC Core §5.5.1.1)."""
        for value in self.values:
            if 0 < rank(value) <= rank(achieved):
                return value
        return None if self.essential and self.values else achieved

    def met_by(self, achieved: str) -> bool:
        return self.select(achieved) is not None
