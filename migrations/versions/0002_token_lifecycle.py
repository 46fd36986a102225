"""token lifecycle: refresh families, logout outbox, client metadata

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21

Columns added to existing tables carry server defaults, so a database that already holds
clients and refresh tokens upgrades in place (no refresh token was issued before this revision).
"""
from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('logout_delivery',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('client_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('uri', sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=False),
    sa.Column('sub', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
    sa.Column('sid', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('jti', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('logout_delivery', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_logout_delivery_client_id'), ['client_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_logout_delivery_next_attempt_at'), ['next_attempt_at'], unique=False)

    with op.batch_alter_table('client', schema=None) as batch_op:
        batch_op.add_column(sa.Column('userinfo_signed_response_alg', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))
        batch_op.add_column(sa.Column('access_token_signed_response_alg', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))
        batch_op.add_column(sa.Column('resources', sa.JSON(), nullable=False, server_default=sa.text("'[]'")))
        batch_op.add_column(sa.Column('default_resource', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True))
        batch_op.add_column(sa.Column('session_refresh_tokens', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('backchannel_logout_uri', sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=True))
        batch_op.add_column(sa.Column('backchannel_logout_session_required', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('frontchannel_logout_uri', sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=True))
        batch_op.add_column(sa.Column('frontchannel_logout_session_required', sa.Boolean(), nullable=False, server_default=sa.false()))

    with op.batch_alter_table('refresh_token', schema=None) as batch_op:
        batch_op.add_column(sa.Column('parent_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))
        batch_op.add_column(sa.Column('audience', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True))
        batch_op.add_column(sa.Column('offline', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('auth', sa.JSON(), nullable=False, server_default=sa.text("'{}'")))
        batch_op.add_column(sa.Column('family_expires_at', sa.DateTime(timezone=True), nullable=False,
                                      server_default=sa.func.current_timestamp()))
        batch_op.create_index(batch_op.f('ix_refresh_token_sid'), ['sid'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('refresh_token', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_refresh_token_sid'))
        batch_op.drop_column('family_expires_at')
        batch_op.drop_column('auth')
        batch_op.drop_column('offline')
        batch_op.drop_column('audience')
        batch_op.drop_column('parent_id')

    with op.batch_alter_table('client', schema=None) as batch_op:
        batch_op.drop_column('frontchannel_logout_session_required')
        batch_op.drop_column('frontchannel_logout_uri')
        batch_op.drop_column('backchannel_logout_session_required')
        batch_op.drop_column('backchannel_logout_uri')
        batch_op.drop_column('session_refresh_tokens')
        batch_op.drop_column('default_resource')
        batch_op.drop_column('resources')
        batch_op.drop_column('access_token_signed_response_alg')
        batch_op.drop_column('userinfo_signed_response_alg')

    with op.batch_alter_table('logout_delivery', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_logout_delivery_next_attempt_at'))
        batch_op.drop_index(batch_op.f('ix_logout_delivery_client_id'))

    op.drop_table('logout_delivery')
