"""account identity: identity level, sealed ID number or credit code, blind indexes

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21

A person account holds at most one ID number and an enterprise account one credit code; each is
sealed under the key named beside it and found by its keyed blind index, which is unique (one
identifier, one account). Existing accounts start at identity level 1 (self-asserted).
"""
from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('assurance_level', sa.Integer(), nullable=False, server_default='1'))
        batch_op.add_column(sa.Column('id_number_sealed', sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column('id_number_key_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))
        batch_op.add_column(sa.Column('id_number_index', sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column('credit_code_sealed', sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column('credit_code_key_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))
        batch_op.add_column(sa.Column('credit_code_index', sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column('verified_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('verification_source', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.create_index(batch_op.f('ix_account_id_number_index'), ['id_number_index'], unique=True)
        batch_op.create_index(batch_op.f('ix_account_credit_code_index'), ['credit_code_index'], unique=True)


def downgrade() -> None:
    with op.batch_alter_table('account', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_account_credit_code_index'))
        batch_op.drop_index(batch_op.f('ix_account_id_number_index'))
        for column in ('verification_source', 'verified_at', 'credit_code_index', 'credit_code_key_id',
                       'credit_code_sealed', 'id_number_index', 'id_number_key_id', 'id_number_sealed',
                       'assurance_level'):
            batch_op.drop_column(column)
