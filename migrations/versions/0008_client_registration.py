"""client registration: RFC 7591/7592 metadata on clients, initial access tokens

Revision ID: 0008
Revises: 0011
Create Date: 2026-11-21
"""
from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0008'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('initial_access_token',
    sa.Column('digest', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('uses_left', sa.Integer(), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('allow_public_subject', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('digest'),
    )
    with op.batch_alter_table('client', schema=None) as batch_op:
        batch_op.add_column(sa.Column('application_type', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False,
                                      server_default='web'))
        batch_op.add_column(sa.Column('registration_access_digest', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True))
        for name in ('sector_identifier_uri', 'client_uri', 'logo_uri', 'policy_uri', 'tos_uri'):
            batch_op.add_column(sa.Column(name, sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=True))
        batch_op.add_column(sa.Column('contacts', sa.JSON(), nullable=False, server_default=sa.text("'[]'")))


def downgrade() -> None:
    with op.batch_alter_table('client', schema=None) as batch_op:
        for name in ('contacts', 'tos_uri', 'policy_uri', 'logo_uri', 'client_uri', 'sector_identifier_uri',
                     'registration_access_digest', 'application_type'):
            batch_op.drop_column(name)
    op.drop_table('initial_access_token')
