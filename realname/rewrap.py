"""Move sealed columns to the newest PII key, batch by batch, while the service keeps running.

Every row names its key id, and the vault opens any version, so rows under the old and the new
id are both readable throughout. Each batch is one short transaction; a row changed by someone
else meanwhile (its key id or ciphertext no longer as read) is left for the next pass.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from sqlalchemy import Engine, Table, and_, select, update

from realname.models import RegistryEntity, RegistryPerson
from realname.pii import PiiVault, Sealed


@dataclass(frozen=True)
class SealedColumn:
    table: Table
    column: str


SEALED_COLUMNS = (
    SealedColumn(RegistryPerson.__table__, "id_number_sealed"),  # type: ignore[arg-type]
    SealedColumn(RegistryEntity.__table__, "credit_code_sealed"),  # type: ignore[arg-type]
)


def rewrap(engine: Engine, vault: PiiVault, *, batch_size: int = 1000,
           on_batch: Callable[[str, int], None] = lambda table, moved: None) -> dict[str, int]:
    """Re-seal every row not under ``vault.key_id``; returns rows moved per table."""
    return {target.table.name: _rewrap_table(engine, vault, target, batch_size, on_batch) for target in SEALED_COLUMNS}


def _rewrap_table(engine: Engine, vault: PiiVault, target: SealedColumn, batch_size: int,
                  on_batch: Callable[[str, int], None]) -> int:
    table, sealed = target.table, target.table.c[target.column]
    key, key_id = table.c.blind_index, table.c.key_id
    after, moved = b"", 0
    while True:
        query = (select(key, sealed, key_id).where(key > after, key_id != vault.key_id)
                 .order_by(key).limit(batch_size))
        with engine.begin() as connection:
            rows = connection.execute(query).all()
            for row in rows:
                fresh = vault.rewrap(Sealed(row.key_id, row[1]), table=table.name, column=target.column,
                                     row_id=row.blind_index.hex())
                done = connection.execute(update(table).where(and_(key == row.blind_index, key_id == row.key_id,
                                                                    sealed == row[1]))
                                          .values({target.column: fresh.blob, "key_id": fresh.key_id}))
                moved += done.rowcount
        if not rows:
            return moved
        after = rows[-1].blind_index
        on_batch(table.name, moved)
