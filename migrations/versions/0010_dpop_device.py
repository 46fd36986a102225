"""DPoP: key-bound refresh families and the per-client DPoP requirement

Revision ID: 0010
Revises: 0011
Create Date: 2026-11-21

Both columns have server defaults (or are nullable), so existing clients and refresh tokens
upgrade in place: nothing issued before this revision is key-bound.
"""
from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0010'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('client', schema=None) as batch_op:
        batch_op.add_column(sa.Column('dpop_bound_access_tokens', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
    with op.batch_alter_table('refresh_token', schema=None) as batch_op:
        batch_op.add_column(sa.Column('dpop_jkt', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('refresh_token', schema=None) as batch_op:
        batch_op.drop_column('dpop_jkt')
    with op.batch_alter_table('client', schema=None) as batch_op:
        batch_op.drop_column('dpop_bound_access_tokens')
