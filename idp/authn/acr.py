"""Authentication context classes (`acr`): Yihao's ordered assurance levels and how a request is met.

acr = min(identity level, authentication strength) (DESIGN §4): the identity level (L1–L4, how
well the person behind the account was verified) and the strength of this login are kept apart,
as OpenID Connect for Identity Assurance advises, and only combined here. The four values are
URIs a deployment may choose (`YIHAO_ACR_VALUES`); they are ordered, so an authentication at the
third level also meets a request for the second, and is reported as the value requested.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

DEFAULT_LEVELS = ("loa/1", "loa/2", "loa/3", "loa/4")
# Authentication strengths, the second term of the minimum (reference "Assurance levels"):
# any login, password (or SMS), MFA, hardware certificate or passkey.
ANY_LOGIN, PASSWORD_STRENGTH, MULTI_FACTOR, HARDWARE = 1, 2, 3, 4
STRONGEST = HARDWARE  # a USB-key certificate or a passkey that verified the person; discovery advertises up to it


def level(identity_level: int, strength: int) -> int:
    """The rank (1–4) of the acr a login of `strength` earns on an identity verified at `identity_level`."""
    return max(1, min(identity_level, strength, 4))


@dataclass(frozen=True)
class AcrValues:
    """The configured acr URIs, weakest first."""

    levels: tuple[str, ...] = DEFAULT_LEVELS

    def rank(self, acr: str) -> int:
        """1–4 for a configured level, 0 for a value Yihao does not know (which nothing meets)."""
        return self.levels.index(acr) + 1 if acr in self.levels else 0

    def achieved(self, identity_level: int, strength: int) -> str:
        """The acr of a login of `strength` on an identity verified at `identity_level`."""
        return self.levels[level(identity_level, strength) - 1]

    def floor(self, minimum: str | None) -> int:
        """The rank a client's minimum acr demands: 0 for none; a value not configured here is beyond
        any login (fail closed: a misspelt minimum refuses logins rather than waiving itself)."""
        if minimum is None:
            return 0
        return self.rank(minimum) or len(self.levels) + 1

    @property
    def strongest(self) -> str:
        """The best acr any login can reach (an L4 identity with the strongest login offered)."""
        return self.achieved(4, STRONGEST)

    def supported(self) -> list[str]:
        return list(self.levels[:self.rank(self.strongest)])


DEFAULT = AcrValues()


@lru_cache(maxsize=8)
def scheme(levels: tuple[str, ...]) -> AcrValues:
    return AcrValues(levels)


def achieved(identity_level: int, strength: int) -> str:
    """The default scheme's acr: "loa/%d" % min(identity_level, strength)."""
    return DEFAULT.achieved(identity_level, strength)


@dataclass(frozen=True)
class AcrRequest:
    """Requested acr values in order of preference; `essential` makes an unmet request an error."""

    values: tuple[str, ...] = ()
    essential: bool = False
    acr: AcrValues = DEFAULT

    def select(self, achieved: str) -> str | None:
        """The acr to report: the first requested value `achieved` meets, else the achieved acr —
        or None when an essential request is unmet (OIDC Core §5.5.1.1)."""
        for value in self.values:
            if 0 < self.acr.rank(value) <= self.acr.rank(achieved):
                return value
        return None if self.essential and self.values else achieved

    def met_by(self, achieved: str) -> bool:
        return self.select(achieved) is not None
