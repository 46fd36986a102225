"""federation: plain OAuth 2 upstreams, partners presenting other clients' tokens

Revision ID: 0013
Revises: 0009
Create Date: 2026-11-28

An upstream is now of a kind: `oidc` (by its issuer, as before) or `oauth2` (no issuer: its
authorization, token and userinfo endpoints and a mapping from the userinfo answer to our claims),
with the token endpoint's client authentication method. A partner rule names the clients whose
tokens from this provider the partner may present as subject tokens.
"""
from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0013'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('upstream', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False,
                                      server_default='oidc'))
        batch_op.add_column(sa.Column('authorization_endpoint', sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=True))
        batch_op.add_column(sa.Column('token_endpoint', sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=True))
        batch_op.add_column(sa.Column('userinfo_endpoint', sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=True))
        batch_op.add_column(sa.Column('claim_map', sa.JSON(), nullable=False, server_default=sa.text("'{}'")))
        batch_op.add_column(sa.Column('token_auth', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False,
                                      server_default='client_secret_basic'))
        batch_op.alter_column('issuer', existing_type=sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True)
    with op.batch_alter_table('partner_rule', schema=None) as batch_op:
        batch_op.add_column(sa.Column('self_clients', sa.JSON(), nullable=False, server_default=sa.text("'[]'")))


def downgrade() -> None:
    op.execute("DELETE FROM upstream_link WHERE upstream IN (SELECT slug FROM upstream WHERE kind <> 'oidc')")
    op.execute("DELETE FROM upstream WHERE kind <> 'oidc'")
    with op.batch_alter_table('partner_rule', schema=None) as batch_op:
        batch_op.drop_column('self_clients')
    with op.batch_alter_table('upstream', schema=None) as batch_op:
        batch_op.alter_column('issuer', existing_type=sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False)
        for column in ('token_auth', 'claim_map', 'userinfo_endpoint', 'token_endpoint', 'authorization_endpoint',
                       'kind'):
            batch_op.drop_column(column)
