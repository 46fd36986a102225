"""Move sealed columns to the newest PII key, batch by batch, while the service keeps running.

Every row names its key id, and the vault opens any version, so rows under the old and the new
id are both readable throughout. Each batch is one short transaction; a row changed by someone
else meanwhile (its key id or ciphertext no longer as read) is left for the next pass.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from sqlalchemy import Engine, Table, and_, select, update

from idp.models import Account
from realname.models import RegistryEntity, RegistryPerson
from realname.pii import PiiVault, Sealed


@dataclass(frozen=True)
class SealedColumn:
    table: Table
    column: str
    key: str = "blind_index"  # the row's primary key, which the associated data names
    key_id: str = "key_id"  # the column naming the key that sealed it

    @property
    def name(self) -> str:
        return f"{self.table.name}.{self.column}"


_ACCOUNT: Table = Account.__table__  # type: ignore[assignment]
SEALED_COLUMNS = (
    SealedColumn(RegistryPerson.__table__, "id_number_sealed"),  # type: ignore[arg-type]
    SealedColumn(RegistryEntity.__table__, "credit_code_sealed"),  # type: ignore[arg-type]
    SealedColumn(_ACCOUNT, "id_number_sealed", key="id", key_id="id_number_key_id"),
    SealedColumn(_ACCOUNT, "credit_code_sealed", key="id", key_id="credit_code_key_id"),
)


def rewrap(engine: Engine, vault: PiiVault, *, batch_size: int = 1000,
           on_batch: Callable[[str, int], None] = lambda table, moved: None) -> dict[str, int]:
    """Re-seal every value not under ``vault.key_id``; returns values moved per ``table.column``."""
    return {target.name: _rewrap_table(engine, vault, target, batch_size, on_batch) for target in SEALED_COLUMNS}


def _rewrap_table(engine: Engine, vault: PiiVault, target: SealedColumn, batch_size: int,
                  on_batch: Callable[[str, int], None]) -> int:
    table, sealed = target.table, target.table.c[target.column]
    key, key_id = table.c[target.key], table.c[target.key_id]
    after: bytes | str | None = None
    moved = 0
    while True:
        query = (select(key, sealed, key_id).where(key_id != vault.key_id, sealed.is_not(None))
                 .order_by(key).limit(batch_size))
        if after is not None:
            query = query.where(key > after)
        with engine.begin() as connection:
            rows = connection.execute(query).all()
            for row_key, blob, old_key_id in rows:
                row_id = row_key.hex() if isinstance(row_key, bytes) else row_key
                fresh = vault.rewrap(Sealed(old_key_id, blob), table=table.name, column=target.column, row_id=row_id)
                done = connection.execute(update(table).where(and_(key == row_key, key_id == old_key_id, sealed == blob))
                                          .values({target.column: fresh.blob, target.key_id: fresh.key_id}))
                moved += done.rowcount
        if not rows:
            return moved
        after = rows[-1][0]
        on_batch(target.name, moved)
