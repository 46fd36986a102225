"""Who an account is: a person's ID number or an enterprise's credit code, and the identity level.

"一号": one identifier, one account. The identifier is sealed on the account row (associated data:
table, column, account id, so a ciphertext copied to another row does not open) and found by its
keyed blind index, which the database keeps unique — two workers binding the same number at the
same moment cannot both succeed. Levels follow ../shared/reference/identity-numbers.md: L1
self-asserted, L2 name + ID number matched in the population registry, L3 L2 + face match, L4
in-person or a CA certificate issued after in-person registration. A level is only ever raised.
"""
from __future__ import annotations

from typing import Callable, TypeVar

from sqlalchemy import Engine, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from idp import events
from idp.accounts import Profile, profile_of
from idp.models import Account
from idp.models._base import utcnow
from realname.pii import CreditCode, IdNumber, PiiVault, Sealed, Sensitive

LEVELS = (1, 2, 3, 4)
S = TypeVar("S", bound=Sensitive)

_COLUMNS = {"id_number": (Account.id_number_sealed, Account.id_number_key_id, Account.id_number_index),
            "credit_code": (Account.credit_code_sealed, Account.credit_code_key_id, Account.credit_code_index)}


class IdentityTaken(Exception):
    """The identifier already belongs to another account."""

    def __init__(self, account_id: str) -> None:
        super().__init__("the identifier is bound to another account")
        self.account_id = account_id


def _level(level: int) -> int:
    if level not in LEVELS:
        raise ValueError(f"identity level must be one of {LEVELS}, not {level!r}")
    return level


class Identities:
    def __init__(self, engine: Engine, vault: PiiVault, changed: Callable[[str], None] = lambda account_id: None) -> None:
        self._engine = engine
        self._changed = changed  # told after an account's level or identity is committed (cached profiles)
        self._sessions = sessionmaker(engine, class_=Session, expire_on_commit=False)
        self.vault = vault

    # -- lookups ---------------------------------------------------------------------------------

    def find_person(self, id_number: IdNumber) -> str | None:
        """The account holding this ID number, if any."""
        return self._find(id_number)

    def find_enterprise(self, credit_code: CreditCode) -> str | None:
        """The enterprise account holding this credit code, if any."""
        return self._find(credit_code)

    def _find(self, value: Sensitive) -> str | None:
        index = _COLUMNS[value.kind][2]
        with self._engine.connect() as connection:
            return connection.execute(select(Account.id).where(index == self.vault.blind_index(value))).scalar()

    def id_number(self, account_id: str) -> IdNumber | None:
        """The account's ID number (a masked type: `reveal()` is the caller's audited decision)."""
        return self._open(account_id, IdNumber)

    def credit_code(self, account_id: str) -> CreditCode | None:
        return self._open(account_id, CreditCode)

    def _open(self, account_id: str, kind: type[S]) -> S | None:
        sealed, key_id, _ = _COLUMNS[kind.kind]
        with self._engine.connect() as connection:
            row = connection.execute(select(sealed, key_id).where(Account.id == account_id)).first()
        if row is None or row[0] is None:
            return None
        return self.vault.open(Sealed(row[1], row[0]), kind, table="account", column=sealed.key, row_id=account_id)

    def level(self, account_id: str) -> int:
        with self._engine.connect() as connection:
            level = connection.execute(select(Account.assurance_level).where(Account.id == account_id)).scalar()
        if level is None:
            raise LookupError(f"no account {account_id!r}")
        return int(level)

    # -- changes ---------------------------------------------------------------------------------

    def bind_person(self, account_id: str, id_number: IdNumber, *, level: int, source: str) -> None:
        """Bind a verified ID number to a person account and raise its level to `level`.

        IdentityTaken when another account holds the number; ValueError when this account already
        holds a different one (an ID number is never replaced, only bound once).
        """
        self._bind(account_id, id_number, level=_level(level), source=source)
        # The reference: the audit trail never holds the number, not even masked — the account id does.
        events.record(events.IDENTITY_VERIFIED, subject=account_id, level=level, source=source)

    def create_enterprise(self, credit_code: CreditCode, *, name: str, level: int, source: str) -> Profile:
        """A new enterprise account for a confirmed credit code; IdentityTaken when one exists."""
        index = self.vault.blind_index(credit_code)
        row = Account(kind="enterprise", username=f"uscc-{index[:8].hex()}", name=name,
                      assurance_level=_level(level), credit_code_index=index, verified_at=utcnow(),
                      verification_source=source)
        sealed = self.vault.seal(credit_code, table="account", column="credit_code_sealed", row_id=row.id)
        row.credit_code_sealed, row.credit_code_key_id = sealed.blob, sealed.key_id
        try:
            with self._sessions() as session, session.begin():
                session.add(row)
        except IntegrityError:
            holder = self.find_enterprise(credit_code)
            if holder is None:
                raise
            raise IdentityTaken(holder) from None
        events.record(events.ACCOUNT_CREATED, subject=row.id, kind="enterprise", level=level, source=source,
                      credit_code=credit_code.masked)
        return profile_of(row)

    def raise_level(self, account_id: str, level: int, *, source: str) -> bool:
        """Raise the account's identity level (never lowers it); True when it changed."""
        now = utcnow()
        with self._engine.begin() as connection:
            done = connection.execute(update(Account)
                                      .where(Account.id == account_id, Account.assurance_level < _level(level))
                                      .values(assurance_level=level, verified_at=now, verification_source=source,
                                              updated_at=now))
        if done.rowcount:
            self._changed(account_id)
            events.record(events.IDENTITY_VERIFIED, subject=account_id, level=level, source=source)
        return bool(done.rowcount)

    def _bind(self, account_id: str, value: Sensitive, *, level: int, source: str) -> None:
        sealed_column, key_column, index_column = _COLUMNS[value.kind]
        index = self.vault.blind_index(value)
        sealed = self.vault.seal(value, table="account", column=sealed_column.key, row_id=account_id)
        now = utcnow()
        try:
            with self._engine.begin() as connection:
                current = connection.execute(select(index_column, Account.assurance_level)
                                             .where(Account.id == account_id).with_for_update()).first()
                if current is None:
                    raise LookupError(f"no account {account_id!r}")
                if current[0] is not None and current[0] != index:
                    raise ValueError("the account is already bound to another identifier")
                values: dict[str, object] = {"assurance_level": max(int(current[1]), level), "verified_at": now,
                                             "verification_source": source, "updated_at": now}
                if current[0] is None:
                    values.update({sealed_column.key: sealed.blob, key_column.key: sealed.key_id,
                                   index_column.key: index})
                connection.execute(update(Account).where(Account.id == account_id).values(values))
        except IntegrityError:
            holder = self._find(value)
            if holder is None or holder == account_id:
                raise
            raise IdentityTaken(holder) from None
        self._changed(account_id)
