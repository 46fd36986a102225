"""Refresh-token families: stored by digest, rotated, and revoked as a family on reuse."""
from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from idp.models._base import new_id, when


class RefreshToken(SQLModel, table=True):
    __tablename__ = "refresh_token"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    token_digest: str = Field(unique=True, max_length=64)
    family_id: str = Field(index=True, max_length=32)
    client_id: str = Field(foreign_key="client.client_id", index=True, max_length=64)
    account_id: str = Field(foreign_key="account.id", index=True, max_length=32)
    scope: str = Field(max_length=1024)
    sid: str | None = Field(default=None, max_length=64)
    issued_at: datetime = when()
    expires_at: datetime = when()
    consumed_at: datetime | None = when(nullable=True)
    revoked_at: datetime | None = when(nullable=True)
