"""Database engine and schema upgrades (Alembic is the only way the schema is made)."""
from __future__ import annotations

import logging
import threading
from collections import namedtuple
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from sqlalchemy import ColumnElement, Connection, Dialect, Engine, Executable, Row, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry, QueuePool
from sqlmodel import Session

from idp import bridge

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
log = logging.getLogger("yihao.db")


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    """An engine tuned per backend: SQLite in WAL mode with a busy timeout; PostgreSQL pooled.

    Either refuses core code running on the event loop (`idp.bridge`) before it takes a connection:
    a blocking statement there would stall the worker, so such code reads through `bridge.offload`."""
    if url.startswith("sqlite"):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        # as many pooled connections as threads, so none is opened (and set up) per request; the one
        # returned last is handed out next (LIFO), so a request finds its connection's page cache warm:
        # SQLite drops a connection's cache whenever another connection has written since its last use,
        # and first-in-first-out handed every request the connection that had waited longest
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, poolclass=_Pool,
                               pool_size=pool_size, max_overflow=pool_size, pool_use_lifo=True, hide_parameters=True)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # No pool_pre_ping: it costs a round trip on every checkout. A connection that died (database
    # restart, failover) fails its next statement before anything is written; SQLAlchemy then sees
    # the disconnect and replaces every pooled connection; reads (`Reads`) retry once, so only
    # writes under way at the restart fail. pool_recycle keeps connections younger than idle timeouts.
    # LIFO here too: the busy connections stay few and warm (server-side prepared statements, caches);
    # one left idle at the bottom is replaced when next handed out if it is older than pool_recycle.
    # hide_parameters: an error's text names the statement, never its values (digests, names, ID numbers)
    return create_engine(url, poolclass=_Pool, pool_size=pool_size, max_overflow=pool_size, pool_recycle=1800,
                         pool_use_lifo=True, hide_parameters=True)


class _Pool(QueuePool):
    """A connection pool that refuses core code on the event loop before it could wait for a
    connection, or open one, on the loop."""

    def _do_get(self) -> ConnectionPoolEntry:
        if bridge.on_loop():
            raise RuntimeError("SQL on the event loop: run it through idp.bridge.offload")
        return super()._do_get()


class Reads:
    """Single-statement reads on an engine's pool, without a transaction around them.

    On PostgreSQL a default connection sends BEGIN before the SELECT and ROLLBACK when it goes
    back to the pool: three round trips for one read. In autocommit the SELECT goes alone (psycopg
    switches it client-side, and skips the ROLLBACK of an idle connection). SQLite's driver never
    begins a transaction for a SELECT, so its engine is used as it is. A read is retried once on a
    connection found dead (database restart): safe, since it changes nothing.
    """

    def __init__(self, engine: Engine) -> None:
        sqlite = engine.dialect.name == "sqlite"
        self._engine = engine if sqlite else engine.execution_options(isolation_level="AUTOCOMMIT")

    def first(self, statement: Executable, params: Mapping[str, Any]) -> Row[Any] | None:
        """The first row, read on the thread pool when called on the event loop (`idp.bridge`)."""
        return bridge.offload(self._retried, statement, params)

    def _retried(self, statement: Executable, params: Mapping[str, Any]) -> Row[Any] | None:
        try:
            return self._first(statement, params)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            return self._first(statement, params)

    def _first(self, statement: Executable, params: Mapping[str, Any]) -> Row[Any] | None:
        with self._engine.connect() as connection:
            return connection.execute(statement, params).first()


class DriverStatement:
    """A hot statement compiled once per dialect and handed to the driver as it is.

    On SQLAlchemy's compiled path each execution builds a parameter dict per row and runs every
    column type's bind processor through several layers; for the few statements that run on every
    token (the audit chain's batch INSERT, a refresh token's rotation) that cost more than the
    database's own work. Here the SQL text, the parameter order and the types' processors for the
    dialect are resolved once, and each value goes through the same processor, so what is stored is
    what the compiled path would store. Returned rows go through the columns' result processors.

    A single execution runs on a cursor of the Connection's own DBAPI connection, through
    `Connection._cursor_execute`: the path SQLAlchemy's dialects take for their own one-off statements
    (sequences, defaults), with the same events, echo, error wrapping and disconnect handling as any
    statement, inside the caller's transaction (begun, as a statement would, when there is none). It
    skips the result object, whose description-to-columns mapping, rebuilt for every textual
    statement, cost a refresh rotation a quarter of its time. A batch (`execute_many`) goes through
    `Connection.exec_driver_sql`, once per batch; on PostgreSQL a batch of a plain INSERT is a COPY,
    which costs a third of an executemany (no per-row statement, no RETURNING of the key).
    """

    def __init__(self, statement: Executable, *, columns: Sequence[str] = (),
                 returns: Sequence[ColumnElement[Any]] = ()) -> None:
        self.statement = statement
        self.returns = tuple(returns)  # what RETURNING gives, in order
        self._columns = list(columns)  # an INSERT's columns, in the order its rows are given
        self._dialects: dict[tuple[str, str], _Compiled] = {}

    def _compiled(self, dialect: Dialect) -> _Compiled:
        key = (dialect.name, dialect.driver)
        found = self._dialects.get(key)
        if found is None:
            found = self._dialects[key] = _Compiled(self.statement, self._columns, self.returns, dialect)
        return found

    def execute(self, connection: Connection, params: Mapping[str, Any]) -> Any:
        """Run once; the first returned row (a named tuple) or None."""
        compiled = self._compiled(connection.dialect)
        if not connection.in_transaction():
            connection.begin()  # as a statement would: the caller's commit() then covers it
        values = compiled.params(params)
        cursor = connection.connection.cursor()
        try:
            connection._cursor_execute(cursor, compiled.sql, values)  # wraps its own errors
            raw = None
            if compiled.returns:
                try:
                    raw = cursor.fetchone()
                except BaseException as exc:
                    connection._handle_dbapi_exception(exc, compiled.sql, values, cursor, None)  # raises, wrapped
                    raise
        finally:
            connection._safe_close_cursor(cursor)  # never masks the statement's own error
        return None if raw is None else compiled.row(raw)

    def execute_many(self, connection: Connection, rows: Iterable[Mapping[str, Any]]) -> None:
        """Run once per row, as one executemany or COPY (nothing for no rows)."""
        compiled = self._compiled(connection.dialect)
        params = [compiled.params(row) for row in rows]
        if not params:
            return
        if compiled.copy is None:
            connection.exec_driver_sql(compiled.sql, params).close()
            return
        if not connection.in_transaction():
            connection.begin()
        cursor = connection.connection.cursor()
        try:
            with cursor.copy(compiled.copy) as copy:
                for values in params:
                    copy.write_row([values[name] for name in compiled.copy_order])
        except BaseException as exc:
            connection._handle_dbapi_exception(exc, compiled.copy, params, cursor, None)  # raises, wrapped
            raise
        finally:
            connection._safe_close_cursor(cursor)


class _Compiled:
    def __init__(self, statement: Executable, columns: list[str], returns: tuple[ColumnElement[Any], ...],
                 dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=columns or None)  # type: ignore[attr-defined]
        if compiled.insert_prefetch or compiled.update_prefetch or any(b.expanding for b in compiled.binds.values()):
            raise ValueError("a driver statement takes every value as given: no defaults, no expanding lists")
        self.sql: str = compiled.string
        # PostgreSQL (psycopg) loads the rows of a plain INSERT's batch with COPY, in the columns' order
        self.copy: str | None = None
        self.copy_order: list[str] = []
        if (dialect.name == "postgresql" and dialect.driver == "psycopg" and columns and not returns
                and getattr(statement, "is_insert", False)):
            quote = dialect.identifier_preparer.quote
            table = dialect.identifier_preparer.format_table(statement.table)  # type: ignore[attr-defined]
            self.copy = f"COPY {table} ({', '.join(quote(name) for name in columns)}) FROM STDIN"
            self.copy_order = [compiled.escaped_bind_names.get(name, name) for name in columns]
        names = list(compiled.positiontup) if compiled.positional else list(compiled.binds)
        order = [(name, compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)) for name in names]
        if compiled.positional:
            self.params: Callable[[Mapping[str, Any]], Any] = lambda row: tuple(
                value(row[name]) if value is not None else row[name] for name, value in order)
        else:  # named: keyed as the SQL text spells them
            spelled = [(compiled.escaped_bind_names.get(name, name), name, value) for name, value in order]
            self.params = lambda row: {key: value(row[name]) if value is not None else row[name]
                                       for key, name, value in spelled}
        self.returns = bool(returns)
        shape = namedtuple("Row", [column.key for column in returns])  # type: ignore[misc]
        convert = [column.type.dialect_impl(dialect).result_processor(dialect, None) for column in returns]
        self.row: Callable[[Sequence[Any]], Any] = lambda raw: shape._make(
            value if process is None else process(value) for process, value in zip(convert, raw))


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


class Checkpointer:
    """Copies an SQLite database's write-ahead log back into the database from a thread of its own.

    By default the connection whose COMMIT takes the log past 1,000 pages copies it back itself,
    and syncs the log and the database to disk, before its COMMIT returns: every commit paid about
    twice its own cost on average, on the thread of the request that made it (for the token
    endpoint, the event loop). Here the writers' automatic checkpoint is pushed out to a backstop
    (`BACKSTOP_PAGES`, for when this thread cannot keep up) and this thread runs a PASSIVE
    checkpoint every `interval` seconds: it never blocks a writer or a reader, and the disk syncs
    happen off the request path with the GIL released. Durability is unchanged: a commit is in the
    log, and the log is synced before any checkpoint copies it.

    `attach` it before the engine's first connection, so every connection gets the backstop.
    """

    BACKSTOP_PAGES = 10_000  # ~40 MB of log

    def __init__(self, engine: Engine, interval: float) -> None:
        self._engine = engine
        self._interval = interval
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="yihao-sqlite-checkpoint", daemon=True)

    @classmethod
    def attach(cls, engine: Engine, interval: float = 0.2) -> Checkpointer | None:
        """Start checkpointing a file database in the background; None for PostgreSQL and in-memory SQLite."""
        database = engine.url.database
        if engine.dialect.name != "sqlite" or not database or database == ":memory:":
            return None
        if engine.pool.checkedin() or engine.pool.checkedout():
            raise RuntimeError("attach the checkpointer before the engine's first connection")
        checkpointer = cls(engine, interval)
        event.listen(engine, "connect", _deferred_checkpoints)
        checkpointer._thread.start()
        return checkpointer

    def checkpoint(self) -> tuple[int, int, int]:
        """One PASSIVE checkpoint: (1 if it could not finish, frames in the log, frames copied back)."""
        with self._engine.connect() as connection:
            busy, frames, copied = connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
        return int(busy), int(frames), int(copied)

    def close(self) -> None:
        """Stop the thread after one last checkpoint (what is left waits in the log, which is safe)."""
        self._stopped.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        failing = False
        while True:
            stopping = self._stopped.wait(self._interval)
            try:
                self.checkpoint()
                failing = False
            except Exception as exc:  # a locked or vanished file: the backstop still bounds the log
                if not failing:
                    log.warning("sqlite checkpoint failed (%s); retrying every %.1f s", type(exc).__name__,
                                self._interval)
                failing = True
            if stopping:
                return


def _deferred_checkpoints(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA wal_autocheckpoint={Checkpointer.BACKSTOP_PAGES}")
    cursor.close()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, class_=Session, expire_on_commit=False)


def _alembic_config(engine: Engine, audit_chain_key: bytes | None = None) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    config.attributes["audit_chain_key"] = audit_chain_key
    return config


def upgrade(engine: Engine, revision: str = "head", *, audit_chain_key: bytes | None = None) -> None:
    """Bring the schema to `revision` (idempotent; several processes may call it at once).

    `audit_chain_key` lets a migration chain audit rows written before the chain existed."""
    from alembic import command

    command.upgrade(_alembic_config(engine, audit_chain_key), revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def has_schema(engine: Engine) -> bool:
    return inspect(engine).has_table("alembic_version")
