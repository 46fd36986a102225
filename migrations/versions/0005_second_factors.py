"""second factors: TOTP, recovery codes, passkeys; a client's minimum acr

Revision ID: 0005
Revises: 0012
Create Date: 2026-11-21
"""
from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0005'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('totp_credential',
    sa.Column('account_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('secret_sealed', sa.LargeBinary(), nullable=False),
    sa.Column('master_key_id', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('last_step', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], ),
    sa.PrimaryKeyConstraint('account_id')
    )
    op.create_table('recovery_code',
    sa.Column('code_digest', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('account_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], ),
    sa.PrimaryKeyConstraint('code_digest')
    )
    with op.batch_alter_table('recovery_code', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recovery_code_account_id'), ['account_id'], unique=False)
    op.create_table('webauthn_credential',
    sa.Column('credential_id', sqlmodel.sql.sqltypes.AutoString(length=1400), nullable=False),
    sa.Column('account_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('public_key', sa.LargeBinary(), nullable=False),
    sa.Column('sign_count', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('transports', sa.JSON(), nullable=False),
    sa.Column('aaguid', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=True),
    sa.Column('backup_eligible', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], ),
    sa.PrimaryKeyConstraint('credential_id')
    )
    with op.batch_alter_table('webauthn_credential', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_webauthn_credential_account_id'), ['account_id'], unique=False)
    with op.batch_alter_table('client', schema=None) as batch_op:
        # one of the configured acr values; NULL: the client accepts whatever the request asks
        batch_op.add_column(sa.Column('minimum_acr', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('client', schema=None) as batch_op:
        batch_op.drop_column('minimum_acr')
    with op.batch_alter_table('webauthn_credential', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_webauthn_credential_account_id'))
    op.drop_table('webauthn_credential')
    with op.batch_alter_table('recovery_code', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recovery_code_account_id'))
    op.drop_table('recovery_code')
    op.drop_table('totp_credential')
