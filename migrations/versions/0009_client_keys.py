"""client keys: private_key_jwt / client_secret_jwt, request objects, pushed authorization requests

Revision ID: 0009
Revises: 0012
Create Date: 2026-11-21

Columns added to `client` carry server defaults, so a database that already holds clients upgrades
in place; existing clients keep their authentication method and need no keys.
"""
from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0009'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('client', schema=None) as batch_op:
        batch_op.add_column(sa.Column('jwks', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('jwks_uri', sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=True))
        batch_op.add_column(sa.Column('token_endpoint_auth_signing_alg', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))
        batch_op.add_column(sa.Column('request_object_signing_alg', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))
        batch_op.add_column(sa.Column('request_uris', sa.JSON(), nullable=False, server_default=sa.text("'[]'")))
        batch_op.add_column(sa.Column('require_pushed_authorization_requests', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('secret_sealed', sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('client', schema=None) as batch_op:
        for column in ('secret_sealed', 'require_pushed_authorization_requests', 'request_uris',
                       'request_object_signing_alg', 'token_endpoint_auth_signing_alg', 'jwks_uri', 'jwks'):
            batch_op.drop_column(column)
