"""Registries in our own tables: a blind-index lookup, never a decryption."""
from __future__ import annotations

from sqlalchemy import Engine, select

from idp.crypto import equal
from realname.models import RegistryEntity, RegistryPerson
from realname.pii import CreditCode, IdNumber, PiiVault, normalise_name
from realname.registry import EntityVerdict, Verdict

_PEOPLE = RegistryPerson.__table__
_ENTITIES = RegistryEntity.__table__


class LocalPopulationRegistry:
    def __init__(self, engine: Engine, vault: PiiVault) -> None:
        self._engine = engine
        self._vault = vault

    def verify(self, name: str, id_number: IdNumber) -> Verdict:
        index = self._vault.blind_index(id_number)
        with self._engine.connect() as connection:
            stored = connection.execute(select(_PEOPLE.c.name_digest).where(_PEOPLE.c.blind_index == index)).scalar()
        if stored is None:
            return Verdict("not_found", "local")
        return Verdict("match" if equal(stored, self._vault.name_digest(name, index)) else "mismatch", "local")


class LocalEntityRegistry:
    def __init__(self, engine: Engine, vault: PiiVault) -> None:
        self._engine = engine
        self._vault = vault

    def lookup(self, credit_code: CreditCode, name: str | None = None) -> EntityVerdict:
        columns = (_ENTITIES.c.name, _ENTITIES.c.legal_representative, _ENTITIES.c.status)
        query = select(*columns).where(_ENTITIES.c.blind_index == self._vault.blind_index(credit_code))
        with self._engine.connect() as connection:
            row = connection.execute(query).first()
        if row is None:
            return EntityVerdict("not_found", "local")
        same = name is None or normalise_name(name) == normalise_name(row.name)
        return EntityVerdict("match" if same else "mismatch", "local", name=row.name,
                             legal_representative=row.legal_representative, status=row.status)
