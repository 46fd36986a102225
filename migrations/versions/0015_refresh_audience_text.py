"""refresh-token audience: unbounded text, as it holds every resource of a grant

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-22

`refresh_token.audience` holds the RFC 8707 resources of a grant, space-separated. Three resource URIs
of ~115 characters passed its 255 characters: on PostgreSQL the INSERT failed after the authorization
code was spent, and the login was lost. No other column stores a joined list under such a limit: the
scope columns (1024) join names from a fixed vocabulary (the supported scopes and consent's
verified_claims items, well under 100 characters), and a client's resources are a JSON list.

On PostgreSQL, VARCHAR(255) to TEXT is a catalogue change (no table rewrite). SQLite does not enforce the
length; batch mode there rebuilds the table so that the schema reads as the model says.
"""
from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('refresh_token', schema=None) as batch_op:
        batch_op.alter_column('audience', existing_type=sqlmodel.sql.sqltypes.AutoString(length=255),
                              type_=sa.Text(), existing_nullable=True)


def downgrade() -> None:
    # A family whose resources do not fit the old width cannot be kept: it would be refused or cut short.
    op.execute("DELETE FROM refresh_token WHERE length(audience) > 255")
    with op.batch_alter_table('refresh_token', schema=None) as batch_op:
        batch_op.alter_column('audience', existing_type=sa.Text(),
                              type_=sqlmodel.sql.sqltypes.AutoString(length=255), existing_nullable=True)
