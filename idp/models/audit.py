"""Audit events: who did what to whom, masked details only."""
from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from idp.models._base import json_dict, when


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_event"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = when(index=True)
    event: str = Field(index=True, max_length=64)
    outcome: str = Field(max_length=16)  # success | failure
    actor: str | None = Field(default=None, max_length=64)
    subject: str | None = Field(default=None, index=True, max_length=64)
    client_id: str | None = Field(default=None, max_length=64)
    address: str | None = Field(default=None, max_length=64)
    request_id: str | None = Field(default=None, max_length=64)
    details: dict = json_dict()
