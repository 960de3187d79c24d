"""Reads on PostgreSQL run straight on asyncpg, with the SQL SQLAlchemy compiled.

Why: for a statement already compiled and cached, SQLAlchemy's execution around the driver
(connection events, execution context, result metadata, the greenlet hop) costs more CPU
than the driver's own work.  Measured on the benchmark's data (2 shared cores, CPU time
per statement): a service with its compute nodes 185 µs through ``conn.execute`` against
42 µs through asyncpg's ``fetch``; an instance with its relationships inline 278 µs
against 107 µs.  That is about a fifth of ``service_get``'s whole CPU per call.

So the statements built once per shape (:meth:`conductor.db.session.Session.get_by`, the
lookup of nearly every getter, and the stored reply of every write) are compiled once
here and run by asyncpg.  Transactions stay SQLAlchemy's: :func:`driver_for` hands out
the driver only in autocommit or inside a transaction SQLAlchemy has begun.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

Row = dict[str, Any]


class Compiled:
    """One statement compiled for asyncpg: its SQL, where each parameter goes, and the
    value conversions SQLAlchemy would apply on the way in and out."""

    def __init__(self, stmt: Any, dialect: Dialect, names: tuple[str, ...]) -> None:
        compiled = stmt.compile(dialect=dialect)
        if compiled.positiontup is None or getattr(compiled, "post_compile_params", None):
            raise ValueError("not a plain positional statement")
        if getattr(compiled, "insert_prefetch", None) or \
                getattr(compiled, "update_prefetch", None):
            # Python-side column defaults (onupdate=utcnow) are computed by SQLAlchemy's
            # execution context, which a direct run skips.
            raise ValueError("the statement needs column defaults computed")
        self.sql: str = compiled.string
        placeholder = dict.fromkeys(names)
        # Values bound at compile time (LIMIT 1 and the like) come from here.
        fixed = compiled.construct_params(placeholder)
        self._slots: list[tuple[str | None, Any]] = []  # (caller's name, or the value)
        self._bind: list[Any] = []
        for name in compiled.positiontup:
            bind = compiled.binds[name]
            self._slots.append((name, None) if name in placeholder else (None, fixed[name]))
            self._bind.append(bind.type.dialect_impl(dialect).bind_processor(dialect))
        # A SELECT's columns, or what an INSERT or UPDATE returns (SQLAlchemy adds the
        # primary key of an INSERT: its "implicit returning").
        selected = getattr(stmt, "selected_columns", None)
        if selected is None:
            selected = compiled.effective_returning or ()
        self._columns = list(selected)
        self._keys = [column.key for column in self._columns]
        if len(set(self._keys)) != len(self._keys):
            raise ValueError("result columns share a key")
        self._dialect = dialect
        self._results: list[Any] | None = None  # known after the first run

    def _arguments(self, params: Row) -> list[Any]:
        args = []
        for (name, value), bind in zip(self._slots, self._bind, strict=True):
            if name is not None:
                value = params[name]
            args.append(bind(value) if bind is not None and value is not None else value)
        return args

    async def fetch(self, driver: asyncpg.Connection, params: Row) -> list[Row]:
        args = self._arguments(params)
        if self._results is None:
            # The result conversions depend on the types the server reports.
            prepared = await driver.prepare(self.sql)
            oids = [attribute.type.oid for attribute in prepared.get_attributes()]
            self._results = [
                column.type.dialect_impl(self._dialect).result_processor(self._dialect, oid)
                for column, oid in zip(self._columns, oids, strict=True)]
        records = await driver.fetch(self.sql, *args)
        keys, results = self._keys, self._results
        if not any(results):
            return [dict(zip(keys, record, strict=True)) for record in records]
        return [{k: (f(v) if f is not None and v is not None else v)
                 for k, f, v in zip(keys, results, record, strict=True)}
                for record in records]


def compile_for(stmt: Any, dialect: Dialect, names: tuple[str, ...]) -> Compiled | None:
    """``stmt`` compiled for direct reads, or None where it is not that simple (then it
    runs through SQLAlchemy as any other)."""
    if dialect.name != "postgresql":
        return None
    try:
        return Compiled(stmt, dialect, names)
    except (ValueError, KeyError, sa_exc.SQLAlchemyError):
        return None


class Statement:
    """A statement built once with named parameters (``bindparam``), run directly where
    the database and the connection allow, else through SQLAlchemy."""

    def __init__(self, stmt: Any, names: tuple[str, ...]) -> None:
        self.stmt = stmt
        self.names = names
        self._compiled: dict[str, Compiled | None] = {}  # by dialect

    async def execute(self, conn: AsyncConnection, params: Row) -> list[Row]:
        """The rows (plain dicts) of ``stmt`` with ``params``: none for a plain write."""
        name = conn.dialect.name
        if name not in self._compiled:
            self._compiled[name] = compile_for(self.stmt, conn.dialect, self.names)
        compiled = self._compiled[name]
        driver = await driver_for(conn) if compiled is not None else None
        if driver is None or compiled is None:
            result = await conn.execute(self.stmt, params)
            return [dict(m) for m in result.mappings()] if result.returns_rows else []
        return await run(compiled, conn, driver, params)


async def driver_for(conn: AsyncConnection) -> asyncpg.Connection | None:
    """The asyncpg connection under ``conn``, ready for a statement of this call: as it is
    in autocommit (reads); in a write's transaction once BEGIN has been sent, which is
    sent here as SQLAlchemy would at its first statement, so that COMMIT and ROLLBACK
    stay SQLAlchemy's.  None where that cannot be done (then SQLAlchemy runs it)."""
    sync = conn.sync_connection
    if conn.dialect.name != "postgresql" or sync is None or sync.closed or sync.invalidated:
        return None
    # The pooled connection: a plain attribute while valid, so no greenlet hop (what
    # AsyncConnection.get_raw_connection spends, for the revalidation we excluded above).
    raw = sync.connection
    driver = raw.driver_connection
    if not isinstance(driver, asyncpg.Connection):
        return None
    if sync.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
        return driver
    if not sync.in_transaction():
        return None
    if not driver.is_in_transaction():
        # The adapter's own lazy BEGIN (what its cursor calls before a first statement).
        start = getattr(raw.dbapi_connection, "_start_transaction", None)
        if start is None:
            return None
        try:
            await start()
        except conn.dialect.loaded_dbapi.Error as error:
            # Raised by the adapter, not through SQLAlchemy: said as SQLAlchemy says a
            # lost connection (a BEGIN fails for no other reason), never handed out again.
            await conn.invalidate(error)
            raise sa_exc.DBAPIError("BEGIN", None, error,  # type: ignore[arg-type]
                                    connection_invalidated=True) from error
    return driver if driver.is_in_transaction() else None


async def run(compiled: Compiled, conn: AsyncConnection, driver: asyncpg.Connection,
              params: Row) -> list[Row]:
    """Fetch, with failures raised as SQLAlchemy raises them (what callers catch)."""
    try:
        return await compiled.fetch(driver, params)
    except asyncpg.IntegrityConstraintViolationError as error:
        raise sa_exc.IntegrityError(compiled.sql, None, error) from error
    except (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError,
            OSError) as error:
        # A refusal by the server, or a value that did not fit its parameter, leaves the
        # connection usable.  Anything else may have left it lost or its protocol
        # confused (asyncpg reports a cut connection in several ways): it is never
        # handed out again.
        usable = not driver.is_closed() and (
            isinstance(error, asyncpg.DataError) or
            isinstance(error, asyncpg.PostgresError) and
            not isinstance(error, asyncpg.PostgresConnectionError))
        if not usable:
            await conn.invalidate(error)
        raise sa_exc.DBAPIError(compiled.sql, None, error,  # type: ignore[arg-type]
                                connection_invalidated=not usable) from error
