"""Streaming CSV import into the registry tables: constant memory, batched upserts, bad rows skipped.

A re-run is idempotent: rows are upserted by blind index, so an interrupted import is finished by
running it again (or continued with ``start_line``). A bad row is reported with its line number
and reason — never its values — and skipped.
"""
from __future__ import annotations

import csv
import time
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Iterator, TextIO

from sqlalchemy import Engine

from realname.errors import ValidationError
from realname.pii import CreditCode, IdNumber, PiiVault

PEOPLE_COLUMNS = ("name", "id_number")
ENTITY_COLUMNS = ("credit_code", "name", "legal_representative", "status")
# Statuses as the market-regulation registry publishes them, and our stable names for them.
STATUSES = {"active": "active", "存续": "active", "在业": "active", "开业": "active",
            "revoked": "revoked", "吊销": "revoked", "cancelled": "cancelled", "注销": "cancelled",
            "moved": "moved", "迁出": "moved"}


class RowError(ValueError):
    """A row that cannot be imported; the message names the column and the rule, not the value."""


class HeaderError(ValueError):
    """The file's first line is not a header we know."""


@dataclass(frozen=True)
class Kind:
    name: str
    table: str
    columns: tuple[str, ...]
    db_columns: tuple[str, ...]
    convert: Callable[[PiiVault, dict[str, str], Any], tuple[Any, ...]]


@dataclass
class ImportReport:
    kind: str
    read: int = 0
    imported: int = 0
    skipped: int = 0
    line: int = 1
    started: float = field(default_factory=time.monotonic)

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started

    @property
    def rate(self) -> float:
        return self.read / self.seconds if self.seconds > 0 else 0.0


def _field(row: dict[str, str], column: str, limit: int) -> str:
    value = row[column].strip()
    if not value:
        raise RowError(f"{column}: 为空 / is empty")
    if len(value) > limit:
        raise RowError(f"{column}: 超过 {limit} 个字符 / longer than {limit} characters")
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn") for c in value):
        raise RowError(f"{column}: 含有控制字符 / contains control characters")
    return value


def _sealed(vault: PiiVault, value: IdNumber | CreditCode, table: str, column: str) -> tuple[bytes, bytes, str]:
    index = vault.blind_index(value)
    sealed = vault.seal(value, table=table, column=column, row_id=index.hex())
    return index, sealed.blob, sealed.key_id


def _parse(column: str, parse: Callable[[str], IdNumber | CreditCode], raw: str) -> IdNumber | CreditCode:
    try:
        return parse(raw)
    except ValidationError as exc:
        raise RowError(f"{column}: {exc.message_zh} / {exc.message_en}") from None


def _person(vault: PiiVault, row: dict[str, str], now: Any) -> tuple[Any, ...]:
    name = _field(row, "name", 128)
    number = _parse("id_number", IdNumber.parse, row["id_number"])
    index, blob, key_id = _sealed(vault, number, "registry_person", "id_number_sealed")
    return index, blob, key_id, vault.name_digest(name, index), now


def _entity(vault: PiiVault, row: dict[str, str], now: Any) -> tuple[Any, ...]:
    code = _parse("credit_code", CreditCode.parse, row["credit_code"])
    name = _field(row, "name", 255)
    representative = _field(row, "legal_representative", 128)
    status = STATUSES.get(row["status"].strip().lower())
    if status is None:
        raise RowError(f"status: 应为 {' | '.join(STATUSES)} / should be one of {' | '.join(STATUSES)}")
    index, blob, key_id = _sealed(vault, code, "registry_entity", "credit_code_sealed")
    return index, blob, key_id, name, representative, status, now


KINDS = {
    "people": Kind("people", "registry_person", PEOPLE_COLUMNS,
                   ("blind_index", "id_number_sealed", "key_id", "name_digest", "updated_at"), _person),
    "entities": Kind("entities", "registry_entity", ENTITY_COLUMNS,
                     ("blind_index", "credit_code_sealed", "key_id", "name", "legal_representative", "status",
                      "updated_at"), _entity),
}


def detect_kind(header: Iterable[str]) -> Kind:
    names = {h.strip().lower() for h in header}
    for kind in KINDS.values():
        if set(kind.columns) <= names:
            return kind
    raise HeaderError("the header needs the columns " + " or ".join(",".join(k.columns) for k in KINDS.values()))


class Importer:
    """Reads a CSV stream and upserts it in batches; ``on_error(line, reason)`` hears of bad rows."""

    def __init__(self, engine: Engine, vault: PiiVault, *, batch_size: int = 5000,
                 on_error: Callable[[int, str], None] = lambda line, reason: None,
                 on_batch: Callable[[ImportReport], None] = lambda report: None) -> None:
        self._engine = engine
        self._vault = vault
        self._batch_size = batch_size
        self._on_error = on_error
        self._on_batch = on_batch

    def run(self, stream: TextIO, kind: str | None = None, start_line: int = 0) -> ImportReport:
        reader = csv.reader(stream)
        header = [h.strip().lower() for h in next(reader, [])]
        chosen = KINDS[kind] if kind else detect_kind(header)
        missing = [c for c in chosen.columns if c not in header]
        if missing:
            raise HeaderError(f"the header lacks the column(s) {', '.join(missing)}")
        report = ImportReport(chosen.name)
        write = _writer(self._engine, chosen)
        for batch in self._batches(reader, header, chosen, report, start_line):
            write(batch)
            report.imported += len(batch)
            self._on_batch(report)
        return report

    def _batches(self, reader: Iterator[list[str]], header: list[str], kind: Kind, report: ImportReport,
                 start_line: int) -> Iterator[list[tuple[Any, ...]]]:
        now = _now(self._engine)
        batch: dict[bytes, tuple[Any, ...]] = {}  # by blind index: one row per number in a statement
        for values in _lines(reader):
            report.line = reader.line_num  # type: ignore[attr-defined]
            if report.line < start_line:
                continue
            report.read += 1
            try:
                if isinstance(values, csv.Error):
                    raise RowError(f"不是有效的 CSV / not valid CSV ({values})")
                if len(values) != len(header):
                    raise RowError(f"应有 {len(header)} 列，实有 {len(values)} 列 / expected {len(header)} fields, got {len(values)}")
                row = kind.convert(self._vault, dict(zip(header, values)), now)
            except RowError as exc:
                report.skipped += 1
                self._on_error(report.line, str(exc))
                continue
            batch[row[0]] = row
            if len(batch) >= self._batch_size:
                yield list(batch.values())
                batch = {}
        if batch:
            yield list(batch.values())


def _lines(reader: Any) -> Iterator[list[str] | csv.Error]:
    """The reader's rows; a line it cannot parse (a NUL byte, a huge field) is yielded as its error."""
    while True:
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield exc


def _now(engine: Engine) -> Any:
    now = datetime.now(timezone.utc)
    # SQLAlchemy's own SQLite format, so the ORM reads these timestamps back.
    return now.strftime("%Y-%m-%d %H:%M:%S.%f") if engine.dialect.name == "sqlite" else now


def _writer(engine: Engine, kind: Kind) -> Callable[[list[tuple[Any, ...]]], None]:
    columns = ", ".join(kind.db_columns)
    updates = ", ".join(f"{c} = excluded.{c}" for c in kind.db_columns[1:])
    upsert = f"ON CONFLICT (blind_index) DO UPDATE SET {updates}"
    if engine.dialect.name == "postgresql":
        return _postgres_writer(engine, kind, columns, upsert)
    marks = ", ".join("?" for _ in kind.db_columns)
    statement = f"INSERT INTO {kind.table} ({columns}) VALUES ({marks}) {upsert}"

    def write(rows: list[tuple[Any, ...]]) -> None:
        connection = engine.raw_connection()
        try:
            connection.cursor().executemany(statement, rows)
            connection.commit()
        finally:
            connection.close()

    return write


def _postgres_writer(engine: Engine, kind: Kind, columns: str, upsert: str) -> Callable[[list[tuple[Any, ...]]], None]:
    """COPY each batch into a temporary table, then one INSERT … SELECT … ON CONFLICT."""

    def write(rows: list[tuple[Any, ...]]) -> None:
        connection = engine.raw_connection()
        try:
            with connection.cursor() as cursor:
                cursor.execute(f"CREATE TEMP TABLE IF NOT EXISTS stage_{kind.table} "
                               f"(LIKE {kind.table} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS")
                with cursor.copy(f"COPY stage_{kind.table} ({columns}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
                cursor.execute(f"INSERT INTO {kind.table} ({columns}) SELECT {columns} FROM stage_{kind.table} {upsert}")
            connection.commit()
        finally:
            connection.close()

    return write
