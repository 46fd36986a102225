"""registries: people and legal entities

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21

Both tables are keyed by the blind index (no second index to maintain for 10 million rows); on
SQLite they are WITHOUT ROWID, so the primary key is the only B-tree.
"""
from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('registry_entity',
    sa.Column('blind_index', sa.LargeBinary(), nullable=False),
    sa.Column('credit_code_sealed', sa.LargeBinary(), nullable=False),
    sa.Column('key_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('legal_representative', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('blind_index'),
    sqlite_with_rowid=False,
    )
    op.create_table('registry_person',
    sa.Column('blind_index', sa.LargeBinary(), nullable=False),
    sa.Column('id_number_sealed', sa.LargeBinary(), nullable=False),
    sa.Column('key_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('name_digest', sa.LargeBinary(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('blind_index'),
    sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table('registry_person')
    op.drop_table('registry_entity')
