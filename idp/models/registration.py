"""Initial access tokens (RFC 7591 §3): an administrator's permission to register clients."""
from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from idp.models._base import when


class InitialAccessToken(SQLModel, table=True):
    __tablename__ = "initial_access_token"

    digest: str = Field(primary_key=True, max_length=64)  # SHA-256 of the token, never the token
    uses_left: int
    expires_at: datetime = when()
    allow_public_subject: bool = False  # registrations with it may ask for subject_type public
    created_at: datetime = when()
