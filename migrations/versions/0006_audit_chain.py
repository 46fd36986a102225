"""audit chain: sequence number, previous hash and own hash on every audit event

Revision ID: 0006
Revises: 0004
Create Date: 2026-11-21

Rows already in the table are chained in id order, under the key derived from the master key
(`yihao db upgrade` and `yihao serve` pass it in); a database with audit rows cannot be upgraded
without it, since a chain made without the key could never verify.
"""
from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import context, op

revision = '0006'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Refuse before any DDL: SQLite would keep half a migration.
    if context.config.attributes.get("audit_chain_key") is None and \
            op.get_bind().execute(sa.text("SELECT 1 FROM audit_event LIMIT 1")).first() is not None:
        raise RuntimeError("audit_event holds rows to chain: upgrade with `yihao db upgrade`, which holds the master key")
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.add_column(sa.Column('seq', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('prev_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.add_column(sa.Column('row_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
    _chain_existing_rows()
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.alter_column('seq', existing_type=sa.BigInteger(), nullable=False)
        batch_op.alter_column('prev_hash', existing_type=sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False)
        batch_op.alter_column('row_hash', existing_type=sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False)
        batch_op.create_index(batch_op.f('ix_audit_event_seq'), ['seq'], unique=True)


def _chain_existing_rows() -> None:
    from idp.audit import FIELDS, GENESIS, row_hash

    bind = op.get_bind()
    types = {"id": sa.Integer(), "at": sa.DateTime(timezone=True), "details": sa.JSON()}
    table = sa.table("audit_event", *(sa.column(name, types.get(name, sa.String())) for name in
                                      ("id", *FIELDS[1:])))
    rows = bind.execute(sa.select(table).order_by(table.c.id)).mappings().all()
    if not rows:
        return
    key = context.config.attributes["audit_chain_key"]
    prev, updates = GENESIS, []
    for seq, row in enumerate(rows, start=1):
        own = row_hash(key, dict(row) | {"seq": seq}, prev)
        updates.append({"row_id": row["id"], "seq": seq, "prev_hash": prev, "row_hash": own})
        prev = own
    bind.execute(sa.text("UPDATE audit_event SET seq = :seq, prev_hash = :prev_hash, row_hash = :row_hash "
                         "WHERE id = :row_id"), updates)


def downgrade() -> None:
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_event_seq'))
        batch_op.drop_column('row_hash')
        batch_op.drop_column('prev_hash')
        batch_op.drop_column('seq')
