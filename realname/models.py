"""Registry tables: people and legal entities, keyed by blind index, identifiers sealed.

The primary key is the blind index, and the sealed identifier's associated data names it, so a
ciphertext moved to another row does not open. A person's name is kept only as a keyed digest
bound to the row: verification needs equality, never the name itself.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

from idp.models._base import when


def _bytes(primary_key: bool = False) -> Field:  # type: ignore[valid-type]
    return Field(sa_column=Column(LargeBinary, primary_key=primary_key, nullable=False))


class RegistryPerson(SQLModel, table=True):
    __tablename__ = "registry_person"
    __table_args__ = {"sqlite_with_rowid": False}

    blind_index: bytes = _bytes(primary_key=True)
    id_number_sealed: bytes = _bytes()
    key_id: str = Field(max_length=32)
    name_digest: bytes = _bytes()
    updated_at: datetime = when()


class RegistryEntity(SQLModel, table=True):
    __tablename__ = "registry_entity"
    __table_args__ = {"sqlite_with_rowid": False}

    blind_index: bytes = _bytes(primary_key=True)
    credit_code_sealed: bytes = _bytes()
    key_id: str = Field(max_length=32)
    name: str = Field(max_length=255)
    legal_representative: str = Field(max_length=128)
    status: str = Field(max_length=16)  # active | revoked | cancelled | moved
    updated_at: datetime = when()


class EnterpriseAgent(SQLModel, table=True):
    """A verified person who may act for an enterprise account: its legal representative or an
    authorised agent (经办人), for a period."""

    __tablename__ = "enterprise_agent"
    __table_args__ = (UniqueConstraint("enterprise_id", "person_id", "role", name="uq_enterprise_agent"),)

    id: int | None = Field(default=None, primary_key=True)
    enterprise_id: str = Field(foreign_key="account.id", max_length=32)
    person_id: str = Field(foreign_key="account.id", index=True, max_length=32)
    role: str = Field(max_length=32)  # legal_representative | agent
    valid_from: datetime = when()
    valid_until: datetime | None = when(nullable=True)
    created_at: datetime = when()
