"""Second factors: a TOTP secret (sealed), single-use recovery codes (keyed digests), passkeys.

The TOTP row keeps the last accepted time step, so an accepted code is refused afterwards by
every worker: acceptance is one conditional UPDATE (`last_step < step`), never a read-then-write.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, LargeBinary
from sqlmodel import Field, SQLModel

from idp.models._base import json_list, when


class TotpCredential(SQLModel, table=True):
    __tablename__ = "totp_credential"

    account_id: str = Field(foreign_key="account.id", primary_key=True, max_length=32)
    # AEAD ciphertext of the base32 secret; associated data totp_credential/secret_sealed/<account_id>
    secret_sealed: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    master_key_id: str = Field(max_length=16)
    last_step: int = 0  # the newest accepted time step (RFC 6238 T); codes at or before it are spent
    created_at: datetime = when()
    last_used_at: datetime | None = when(nullable=True)


class RecoveryCode(SQLModel, table=True):
    __tablename__ = "recovery_code"

    code_digest: str = Field(primary_key=True, max_length=64)  # keyed HMAC bound to the account
    account_id: str = Field(foreign_key="account.id", index=True, max_length=32)
    created_at: datetime = when()


class WebAuthnCredential(SQLModel, table=True):
    __tablename__ = "webauthn_credential"

    credential_id: str = Field(primary_key=True, max_length=1400)  # base64url, as the authenticator gave it
    account_id: str = Field(foreign_key="account.id", index=True, max_length=32)
    public_key: bytes = Field(sa_column=Column(LargeBinary, nullable=False))  # COSE key
    sign_count: int = 0
    name: str = Field(max_length=64)
    transports: list[str] = json_list()
    aaguid: str | None = Field(default=None, max_length=36)
    backup_eligible: bool = False  # a synced passkey (amr swk) rather than a device-bound one (amr hwk)
    created_at: datetime = when()
    last_used_at: datetime | None = when(nullable=True)
