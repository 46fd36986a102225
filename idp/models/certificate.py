"""Trusted CAs (each with its profile) and the history of certificates used to log in."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

from idp.models._base import json_dict, new_id, when


class TrustedCa(SQLModel, table=True):
    __tablename__ = "trusted_ca"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    name: str = Field(unique=True, max_length=128)
    subject: str = Field(max_length=1024)  # RFC 4514, for people; matching uses the DER
    fingerprint: str = Field(unique=True, max_length=64)  # SHA-256 of the DER, hex
    certificate: bytes = Field(sa_column=Column(LargeBinary, nullable=False))  # DER
    profile: dict[str, Any] = json_dict()
    created_at: datetime = when()


class CertificateBinding(SQLModel, table=True):
    """A certificate that logged into an account: the account is bound to the entity or person,
    these rows are the history (renewals and other CAs add rows, never re-bind)."""

    __tablename__ = "certificate_binding"
    __table_args__ = (UniqueConstraint("account_id", "fingerprint"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    account_id: str = Field(foreign_key="account.id", index=True, max_length=32)
    ca_id: str | None = Field(default=None, max_length=32)  # the trusted CA the path ended at
    issuer: str = Field(max_length=1024)
    serial: str = Field(max_length=64)  # hex
    fingerprint: str = Field(index=True, max_length=64)  # SHA-256 of the DER, hex
    identifier_kind: str = Field(max_length=16)  # credit_code | id_number
    identifier_masked: str = Field(max_length=32)
    first_used_at: datetime = when()
    last_used_at: datetime = when()
