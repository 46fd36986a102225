"""Audit events: who did what to whom, masked details only, hash-chained in `seq` order (idp/audit.py)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column
from sqlmodel import Field, SQLModel

from idp.models._base import json_dict, when


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_event"

    id: int | None = Field(default=None, primary_key=True)
    seq: int = Field(sa_column=Column(BigInteger, nullable=False, unique=True, index=True))  # the chain's order, gap-free
    at: datetime = when(index=True)
    event: str = Field(index=True, max_length=64)
    outcome: str = Field(max_length=16)  # success | failure
    actor: str | None = Field(default=None, max_length=64)
    subject: str | None = Field(default=None, index=True, max_length=64)
    client_id: str | None = Field(default=None, max_length=64)
    address: str | None = Field(default=None, max_length=64)
    request_id: str | None = Field(default=None, max_length=64)
    details: dict = json_dict()
    prev_hash: str = Field(max_length=64)  # the row before's row_hash (64 zeros for the first)
    row_hash: str = Field(max_length=64)  # HMAC-SHA256 over the canonical row and prev_hash
