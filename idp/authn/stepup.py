"""Step-up: which second factor a request needs, and the authentication a factor produces.

A request wants the weakest acr among those it names (any of them satisfies it) and at least the
client's `minimum_acr`; it *must* reach the client's minimum and an essential `claims.acr`
(OIDC Core §5.5.1.1). acr = min(identity level, strength), so a second factor is asked for only
when it raises the acr: never beyond the identity level, never when the password already meets it.
"""
from __future__ import annotations

from dataclasses import dataclass

from idp.authn.acr import HARDWARE, MULTI_FACTOR, PASSWORD_STRENGTH, AcrRequest, level
from idp.authn.passkeys import Passkeys, PasskeyUse
from idp.authn.totp import Totp

PASSWORD, MFA, PASSKEY = PASSWORD_STRENGTH, MULTI_FACTOR, HARDWARE  # what a password, two factors, a passkey prove


class Unreachable(Exception):
    """No authentication this account can make meets what the request must reach."""


@dataclass(frozen=True)
class Requirement:
    wanted: int = 0  # the rank to try for
    floor: int = 0  # the rank that must be reached, else unmet_authentication_requirements

    @classmethod
    def of(cls, request: AcrRequest, minimum_acr: str | None) -> Requirement:
        ranks = [request.acr.rank(v) for v in request.values if request.acr.rank(v)]
        requested = min(ranks) if ranks else 0
        minimum = request.acr.floor(minimum_acr)
        return cls(max(requested, minimum), max(minimum, requested if request.essential else 0))

    def second_factor(self, identity_level: int, current: int, available: int) -> int | None:
        """The strength to ask a second factor for, or None when the current acr is as good as it gets;
        raises Unreachable when the floor cannot be reached."""
        if current >= self.wanted:
            return None
        reach = level(identity_level, available)
        if reach < self.floor:
            raise Unreachable()
        if reach <= current:
            return None
        return MFA if min(self.wanted, reach) <= MFA else PASSKEY


def factor_amr(first: tuple[str, ...], second: tuple[str, ...]) -> tuple[str, ...]:
    """RFC 8176: the methods used, and `mfa` once two factors were."""
    return tuple(dict.fromkeys([*first, *second, "mfa"]))


class SecondFactors:
    """The account's second factors as the login flow sees them."""

    def __init__(self, totp: Totp, passkeys: Passkeys) -> None:
        self.totp = totp
        self.passkeys = passkeys

    def available(self, account_id: str) -> int:
        """The strongest authentication the account's factors can make with its password."""
        if self.passkeys.list(account_id):
            return PASSKEY
        return MFA if self.totp.enrolled(account_id) else PASSWORD

    @staticmethod
    def passkey_strength(use: PasskeyUse) -> int:
        # loa/4 needs the authenticator to have verified the person (PIN or biometric)
        return PASSKEY if use.user_verified else MFA
