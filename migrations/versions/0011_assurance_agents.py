"""assurance and enterprise agents: clients allowed the whole ID number; who may act for an enterprise

Revision ID: 0011
Revises: 0006
Create Date: 2026-11-21
"""
from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0011'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('client') as batch:
        batch.add_column(sa.Column('release_id_number', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table('enterprise_agent',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('enterprise_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('person_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('role', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('valid_from', sa.DateTime(timezone=True), nullable=False),
    sa.Column('valid_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['enterprise_id'], ['account.id'], ),
    sa.ForeignKeyConstraint(['person_id'], ['account.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('enterprise_id', 'person_id', 'role', name='uq_enterprise_agent')
    )
    op.create_index(op.f('ix_enterprise_agent_person_id'), 'enterprise_agent', ['person_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_enterprise_agent_person_id'), table_name='enterprise_agent')
    op.drop_table('enterprise_agent')
    with op.batch_alter_table('client') as batch:
        batch.drop_column('release_id_number')
