"""Accounts: creation and password authentication (no enumeration by message or timing)."""
from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from idp import events
from idp.authn.password import Passwords
from idp.models import Account
from idp.models._base import utcnow

USERNAME = re.compile(r"^[A-Za-z0-9._@+-]{3,128}$")


class AccountInputError(ValueError):
    """Input that cannot make an account; the message says which field and why."""


@dataclass(frozen=True)
class Profile:
    id: str
    username: str
    status: str
    name: str | None
    given_name: str | None
    family_name: str | None
    email: str | None
    email_verified: bool
    phone_number: str | None
    phone_number_verified: bool
    locale: str | None
    updated_at: int


def _profile(row: Account) -> Profile:
    return Profile(row.id, row.username, row.status, row.name, row.given_name, row.family_name, row.email,
                   row.email_verified, row.phone_number, row.phone_number_verified, row.locale,
                   int(row.updated_at.timestamp()))


class Accounts:
    def __init__(self, engine: Engine, passwords: Passwords) -> None:
        self._sessions = sessionmaker(engine, class_=Session, expire_on_commit=False)
        self.passwords = passwords

    def create(self, username: str, password: str, **profile: object) -> Profile:
        if not USERNAME.match(username):
            raise AccountInputError("username: 3–128 characters of letters, digits and . _ @ + -")
        if len(password) < 8 or len(password) > 1024:
            raise AccountInputError("password: between 8 and 1024 characters")
        row = Account(username=username, password_hash=self.passwords.hash(password), **profile)  # type: ignore[arg-type]
        with self._sessions() as session, session.begin():
            if session.execute(select(Account.id).where(Account.username == username)).first():
                raise AccountInputError(f"username {username!r} is taken")
            session.add(row)
        events.record(events.ACCOUNT_CREATED, subject=row.id)
        return _profile(row)

    def get(self, account_id: str) -> Profile | None:
        with self._sessions() as session:
            row = session.get(Account, account_id)
        return _profile(row) if row is not None else None

    def authenticate(self, username: str, password: str) -> Profile | None:
        """The account if the password is right and the account active; one argon2 verify either way."""
        with self._sessions() as session:
            row = session.execute(select(Account).where(Account.username == username)).scalar_one_or_none() \
                if USERNAME.match(username) else None
        check = self.passwords.verify(row.password_hash if row is not None else None, password[:1024])
        if row is None or not check.ok or row.status != "active":
            return None
        if check.new_hash:
            self._rehash(row.id, check.new_hash)
        return _profile(row)

    def _rehash(self, account_id: str, new_hash: str) -> None:
        with self._sessions() as session, session.begin():
            session.execute(update(Account).where(Account.id == account_id)
                            .values(password_hash=new_hash, updated_at=utcnow()))
        events.record(events.PASSWORD_REHASHED, subject=account_id)
