"""certificates: trusted CAs and certificate bindings

Revision ID: 0007
Revises: 0012
Create Date: 2026-11-21

Clients may authenticate with a certificate (RFC 8705 tls_client_auth: the subject DN to match).
The trust store is small (tens of CAs) and read whole; bindings are history, one row per
(account, certificate fingerprint).
"""
from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0007'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('trusted_ca',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('subject', sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=False),
    sa.Column('fingerprint', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('certificate', sa.LargeBinary(), nullable=False),
    sa.Column('profile', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('fingerprint'),
    sa.UniqueConstraint('name')
    )
    op.create_table('certificate_binding',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('account_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('ca_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('issuer', sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=False),
    sa.Column('serial', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('fingerprint', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('identifier_kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('identifier_masked', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('first_used_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('account_id', 'fingerprint')
    )
    with op.batch_alter_table('certificate_binding', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_certificate_binding_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_certificate_binding_fingerprint'), ['fingerprint'], unique=False)
    with op.batch_alter_table('client', schema=None) as batch_op:
        batch_op.add_column(sa.Column('tls_client_auth_subject_dn', sqlmodel.sql.sqltypes.AutoString(length=1024),
                                      nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('client', schema=None) as batch_op:
        batch_op.drop_column('tls_client_auth_subject_dn')
    with op.batch_alter_table('certificate_binding', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_certificate_binding_fingerprint'))
        batch_op.drop_index(batch_op.f('ix_certificate_binding_account_id'))

    op.drop_table('certificate_binding')
    op.drop_table('trusted_ca')
