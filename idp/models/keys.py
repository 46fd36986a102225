"""Signing keys: public JWK in clear, private part sealed with a key derived from the master key."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, LargeBinary
from sqlmodel import Field, SQLModel

from idp.models._base import json_dict, when


class SigningKey(SQLModel, table=True):
    __tablename__ = "signing_key"

    kid: str = Field(primary_key=True, max_length=64)
    alg: str = Field(index=True, max_length=16)
    state: str = Field(index=True, max_length=16)  # next | active | retired
    public_jwk: dict = json_dict()
    private_sealed: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    master_key_id: str = Field(max_length=16)
    created_at: datetime = when()
    activated_at: datetime | None = when(nullable=True)
    retired_at: datetime | None = when(nullable=True)
    publish_until: datetime | None = when(nullable=True)
