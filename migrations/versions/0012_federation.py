"""federation: upstreams, links, partner rules

Revision ID: 0012
Revises: 0003
Create Date: 2026-11-21

Upstream identity providers with their trust policy, the links from an upstream subject to a
local account (one per upstream and subject, one per upstream and account), and the rules of what
each partner client may exchange or assert.
"""
from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0012'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('upstream',
    sa.Column('slug', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('issuer', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('client_id', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('client_secret_sealed', sa.LargeBinary(), nullable=True),
    sa.Column('master_key_id', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('scope', sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=False),
    sa.Column('trusted_claims', sa.JSON(), nullable=False),
    sa.Column('identity_level', sa.Integer(), nullable=False),
    sa.Column('acr_map', sa.JSON(), nullable=False),
    sa.Column('may_create', sa.Boolean(), nullable=False),
    sa.Column('algorithms', sa.JSON(), nullable=False),
    sa.Column('end_session', sa.Boolean(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('slug'),
    sa.UniqueConstraint('issuer')
    )
    op.create_table('partner_rule',
    sa.Column('client_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('subject_issuers', sa.JSON(), nullable=False),
    sa.Column('token_types', sa.JSON(), nullable=False),
    sa.Column('audiences', sa.JSON(), nullable=False),
    sa.Column('scopes', sa.JSON(), nullable=False),
    sa.Column('actor_issuers', sa.JSON(), nullable=False),
    sa.Column('release_identity', sa.Boolean(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['client_id'], ['client.client_id'], ),
    sa.PrimaryKeyConstraint('client_id')
    )
    op.create_table('upstream_link',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('upstream', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('subject', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('account_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('linked_by', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], ),
    sa.ForeignKeyConstraint(['upstream'], ['upstream.slug'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('upstream', 'account_id', name='uq_upstream_link_account'),
    sa.UniqueConstraint('upstream', 'subject', name='uq_upstream_link_subject')
    )
    with op.batch_alter_table('upstream_link', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_upstream_link_account_id'), ['account_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('upstream_link', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_upstream_link_account_id'))

    op.drop_table('upstream_link')
    op.drop_table('partner_rule')
    op.drop_table('upstream')
