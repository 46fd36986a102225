"""Refresh-token families and the back-channel logout outbox.

A refresh token is stored by digest only. Every token of one login (its grant) shares a family id,
which is also the `gid` of the access tokens issued with it, so revoking the family revokes those.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Text
from sqlmodel import Field, SQLModel

from idp.models._base import json_dict, new_id, when


class RefreshToken(SQLModel, table=True):
    __tablename__ = "refresh_token"
    # Each use of a token checks its family for a revocation and its parent for a spent sibling. A family
    # grows by a row per refresh, so the first is a seek on (family, revoked) rather than a family scan.
    __table_args__ = (Index("ix_refresh_token_family_revoked", "family_id", "revoked_at"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    token_digest: str = Field(unique=True, max_length=64)
    family_id: str = Field(max_length=32)
    parent_id: str | None = Field(default=None, index=True, max_length=32)  # the token this one replaced
    client_id: str = Field(foreign_key="client.client_id", index=True, max_length=64)
    account_id: str = Field(foreign_key="account.id", index=True, max_length=32)
    scope: str = Field(max_length=1024)
    # RFC 8707: the grant's resources, space-separated; unbounded, as a grant may name several long URIs
    audience: str | None = Field(default=None, sa_type=Text)
    sid: str | None = Field(default=None, index=True, max_length=64)
    offline: bool = False  # offline_access: outlives the SSO session
    auth: dict = json_dict()  # how the person authenticated (auth_time, amr, acr)
    dpop_jkt: str | None = Field(default=None, max_length=64)  # RFC 9449 §5: a public client's family is key-bound
    issued_at: datetime = when()
    expires_at: datetime = when()  # idle expiry of this token
    family_expires_at: datetime = when()  # absolute expiry of the whole family
    consumed_at: datetime | None = when(nullable=True)
    revoked_at: datetime | None = when(nullable=True)


class LogoutDelivery(SQLModel, table=True):
    """One back-channel logout token to deliver to one client, retried until it is accepted."""

    __tablename__ = "logout_delivery"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    client_id: str = Field(max_length=64, index=True)
    uri: str = Field(max_length=1024)
    sub: str | None = Field(default=None, max_length=255)
    sid: str | None = Field(default=None, max_length=64)
    jti: str = Field(max_length=64)
    status: str = Field(default="pending", max_length=16)  # pending | delivered | failed
    attempts: int = 0
    next_attempt_at: datetime = when(index=True)
    created_at: datetime = when()
    delivered_at: datetime | None = when(nullable=True)
    last_error: str | None = Field(default=None, max_length=255)
