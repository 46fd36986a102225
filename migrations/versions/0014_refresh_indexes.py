"""refresh-token indexes: a token's use seeks its family's revocations and its siblings

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-21

Spending a refresh token asks two questions in its UPDATE: has the family been revoked, and has a
sibling (same parent) already been used. Without an index on `parent_id` the second scanned the whole
table, and the family index alone made the first read every row of the family, which grows by one
row per refresh. (family_id, revoked_at) serves both family lookups and the revocation seek, so it
replaces the family index.
"""
from __future__ import annotations

from alembic import op


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('refresh_token', schema=None) as batch_op:
        batch_op.create_index('ix_refresh_token_family_revoked', ['family_id', 'revoked_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_refresh_token_parent_id'), ['parent_id'], unique=False)
        batch_op.drop_index(batch_op.f('ix_refresh_token_family_id'))


def downgrade() -> None:
    with op.batch_alter_table('refresh_token', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_refresh_token_family_id'), ['family_id'], unique=False)
        batch_op.drop_index(batch_op.f('ix_refresh_token_parent_id'))
        batch_op.drop_index('ix_refresh_token_family_revoked')
