"""Real-name verification of citizens: sign up verified (→ L2), or raise an L1 account to L2.

Registration must not become an oracle for checking other people's ID numbers:
- a registry `mismatch` and `not_found` get the same answer (`no_match`) and both count as a
  failure against the client address and against the ID number tried (idp.throttle: locks that
  double); while locked the registry is not asked at all (`throttled`);
- "this number already has an account" is said only after the registry matched the name and the
  number — to someone who knows both — and offers recovery, never a second account;
- an `unavailable` registry creates nothing and is never reported as a mismatch.
No ID number reaches a log line or an audit record: they hold the account id only.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from sqlalchemy import Engine, delete, select

from idp import events
from idp.accounts import AccountInputError, Profile, check_new_credentials
from idp.models import Account
from idp.throttle import Limit, Throttle
from idp.verified_claims import Record
from realname.identity import IdentityTaken
from realname.pii import IdNumber

if TYPE_CHECKING:
    from idp.core import Core

log = logging.getLogger(__name__)
VERIFIED = 2  # name + ID number matched in the population registry (二要素)
Status = Literal["verified", "no_match", "taken", "unavailable", "throttled", "already_verified"]


@dataclass(frozen=True)
class Result:
    status: Status
    profile: Profile | None = None


class Verification:
    def __init__(self, core: Core) -> None:
        self._core = core
        self._engine: Engine = core.engine
        settings = core.settings
        # The shared brute-force throttle (doubling locks), with the stricter limit verification needs:
        # the same number of failures per ID number tried and per client address.
        limit = Limit(settings.signup_max_failures, max(settings.signup_failure_window, settings.throttle_lock_max),
                      settings.throttle_lock, settings.throttle_lock_max)
        self.throttle = Throttle(core.store, limit, limit)

    def sign_up(self, *, name: str, id_number: IdNumber, username: str, password: str, phone: str | None,
                address: str | None) -> Result:
        """A new account verified at L2, or nothing created; raises AccountInputError for bad input."""
        check_new_credentials(username, password)
        if self._core.accounts.username_taken(username):
            raise AccountInputError("username_taken")
        source = self._check(name, id_number, address)
        if isinstance(source, Result):
            return source
        if self._core.identities.find_person(id_number) is not None:
            return Result("taken")
        try:
            profile = self._core.accounts.create(username, password, name=name, phone_number=phone or None,
                                                 locale="zh-CN")
        except AccountInputError:  # the username was taken a moment ago
            raise AccountInputError("username_taken") from None
        try:
            self._bind(profile.id, id_number, source)
        except IdentityTaken:  # the same person signing up twice at the same moment: one account
            self._remove(profile.id)
            return Result("taken")
        return Result("verified", self._core.accounts.get(profile.id))

    def upgrade(self, account_id: str, *, name: str, id_number: IdNumber, address: str | None) -> Result:
        """Raise an existing account to L2 with a registry match; its name becomes the verified name."""
        profile = self._core.accounts.get(account_id)
        if profile is None:
            raise AccountInputError("account")
        if profile.assurance_level >= VERIFIED:
            return Result("already_verified", profile)
        source = self._check(name, id_number, address)
        if isinstance(source, Result):
            return source
        holder = self._core.identities.find_person(id_number)
        if holder is not None and holder != account_id:
            return Result("taken")
        try:
            self._bind(account_id, id_number, source, name=name)
        except (IdentityTaken, ValueError):
            return Result("taken")
        return Result("verified", self._core.accounts.get(account_id))

    def _check(self, name: str, id_number: IdNumber, address: str | None) -> Result | str:
        """The registry's name when it matched; else the result to give (and the failure counted)."""
        # The number tried is keyed by its keyed blind index: a plain digest of an ID number is reversible.
        keys = self.throttle.keys("verify", account=self._core.vault.blind_index(id_number).hex(), address=address)
        if not self.throttle.check(keys).allowed:
            events.record(events.VERIFICATION_FAILED, outcome="failure", reason="throttled")
            return Result("throttled")
        verdict = self._core.population.verify(name, id_number)
        if verdict.outcome == "unavailable":
            log.warning("population registry unavailable (%s)", verdict.detail or verdict.source)
            events.record(events.VERIFICATION_FAILED, outcome="failure", reason="registry_unavailable")
            return Result("unavailable")
        if verdict.outcome != "match":
            self.throttle.failure(keys)
            events.record(events.VERIFICATION_FAILED, outcome="failure", reason="no_match")
            return Result("no_match")
        self.throttle.success(keys)
        return source_name(verdict.source)

    def _bind(self, account_id: str, id_number: IdNumber, source: str, name: str | None = None) -> None:
        self._core.identities.bind_person(account_id, id_number, level=VERIFIED, source=source)
        if name is not None:
            with self._engine.begin() as connection:
                connection.execute(Account.__table__.update().where(Account.id == account_id).values(name=name))
            self._core.accounts.changed(account_id)

    def _remove(self, account_id: str) -> None:
        with self._engine.begin() as connection:
            connection.execute(delete(Account).where(Account.id == account_id))
        self._core.accounts.changed(account_id)

    def record(self, account_id: str) -> Record | None:
        """How the account's identity was verified, for verified_claims; None below L2."""
        with self._engine.connect() as connection:
            row = connection.execute(select(Account.assurance_level, Account.verified_at, Account.verification_source,
                                            Account.name).where(Account.id == account_id)).first()
        if row is None or row.assurance_level < VERIFIED or row.verified_at is None or not row.name:
            return None
        id_number = self._core.identities.id_number(account_id)
        if id_number is None:
            return None
        return Record(row.assurance_level, row.verified_at, row.verification_source or "", row.name, id_number)


def source_name(registry: str) -> str:
    """The evidence's organisation: which population registry confirmed the identity."""
    return f"{registry}-population-registry"

