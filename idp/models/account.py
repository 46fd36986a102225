"""Accounts: a person or an enterprise, with a stable internal id."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, LargeBinary
from sqlmodel import Field, SQLModel

from idp.models._base import new_id, when


class Account(SQLModel, table=True):
    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    kind: str = Field(default="person", max_length=16)  # person | enterprise
    status: str = Field(default="active", max_length=16)  # active | disabled
    username: str = Field(unique=True, index=True, max_length=128)
    password_hash: str | None = Field(default=None, max_length=255)
    name: str | None = Field(default=None, max_length=255)
    given_name: str | None = Field(default=None, max_length=128)
    family_name: str | None = Field(default=None, max_length=128)
    email: str | None = Field(default=None, max_length=255)
    email_verified: bool = False
    phone_number: str | None = Field(default=None, max_length=32)
    phone_number_verified: bool = False
    locale: str | None = Field(default=None, max_length=16)
    # Identity (realname.identity): level L1–L4; a person's ID number or an enterprise's credit code
    # sealed (associated data: table, column, account id) under the key named beside it, and found
    # by its keyed blind index, which is unique: one identifier, one account.
    assurance_level: int = Field(default=1)
    id_number_sealed: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    id_number_key_id: str | None = Field(default=None, max_length=32)
    id_number_index: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True, unique=True, index=True))
    credit_code_sealed: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    credit_code_key_id: str | None = Field(default=None, max_length=32)
    credit_code_index: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True, unique=True, index=True))
    verified_at: datetime | None = when(nullable=True)
    verification_source: str | None = Field(default=None, max_length=64)
    created_at: datetime = when()
    updated_at: datetime = when()
