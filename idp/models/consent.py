"""Consent a person gave a client, per scope, remembered until revoked."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from idp.models._base import when


class Consent(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("account_id", "client_id", name="uq_consent_account_client"),)

    id: int | None = Field(default=None, primary_key=True)
    account_id: str = Field(foreign_key="account.id", index=True, max_length=32)
    client_id: str = Field(foreign_key="client.client_id", max_length=64)
    scope: str = Field(max_length=1024)
    granted_at: datetime = when()
    updated_at: datetime = when()
