"""One call's unit of work: a Core connection in a transaction, and row-dict helpers.

Rows are plain dicts from the start (column name -> value).  Every row a read returns
carries what its table declares (relationships asked for in ``joins``, the ones the
table always carries, computed keys: :mod:`conductor.db.loading`); the dicts that
handlers return are what the caller receives.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any, overload

from sqlalchemy import (
    BigInteger,
    Executable,
    Table,
    bindparam,
    delete,
    func,
    insert,
    not_,
    select,
    text,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from conductor.db import direct
from conductor.db import values as vals
from conductor.db.base import CONFIG, Config, utcnow
from conductor.db.loading import Loader, complete, loader_for, primary_key, tree_of
from conductor.db.query import (
    ProjectOnly,
    authorize_project,
    deleted_filter,
    isolated,
    isolation_condition,
    model_query,
    project_condition,
    scoping,
    table_of,
)
from schemas import exceptions
from schemas.context import RequestContext

log = logging.getLogger(__name__)

Row = dict[str, Any]
Joins = Sequence[str]


class Session:
    """What a handler gets as its first argument."""

    def __init__(self, conn: AsyncConnection, function: str = "",
                 config: Config = CONFIG, *, loader: Loader | None = None) -> None:
        self.conn = conn
        self.function = function
        self.config = config
        # The loading strategy is the database's (conductor.db.loading.loader_for).
        self.loader = loader or loader_for(conn.dialect)
        self._postgres = conn.dialect.name == "postgresql"
        self.events_recorded = 0  # outbox rows written (conductor.db.events)
        self.deferred_error: Exception | None = None
        self._driver: Any = _UNKNOWN  # asyncpg's, for cached statements (conductor.db.direct)

    def fail_after_commit(self, error: Exception) -> None:
        """Answer with ``error`` but keep what the call wrote (quota_reserve's refreshes
        before OverQuota, api-network-quota-storage.md §4.3); in a job queue the error
        still undoes the whole batch."""
        self.deferred_error = error

    # -- plain statements -----------------------------------------------------------

    async def execute(self, stmt: Executable, params: Any = None) -> Any:
        return await self.conn.execute(stmt, params)

    # Reads.  A row read is a result: ``joins`` loaded, with what its table always carries
    # (conductor.db.loading) and its computed keys.  ``bare=True`` skips what the table
    # always carries, for rows a handler only reads to decide (a group's instances can be
    # thousands of rows that an instance_create never returns).

    async def rows(self, stmt: Executable, joins: Joins = (), *,
                   missing: Callable[[], Exception] | None = None,
                   bare: bool = False) -> list[Row]:
        """All rows of ``stmt``; ``missing()`` is raised for no rows at all (the
        functions whose empty answer is an error)."""
        rows = await self._fetch(stmt, joins, False, bare)
        if not rows and missing is not None:
            raise missing()
        return rows

    async def row(self, stmt: Executable, joins: Joins = (), *,
                  bare: bool = False) -> Row | None:
        """The first row of ``stmt`` (callers order it) as :meth:`rows` gives it, or None."""
        rows = await self._fetch(stmt, joins, True, bare)
        return rows[0] if rows else None

    async def _fetch(self, stmt: Any, joins: Joins, first: bool, bare: bool) -> list[Row]:
        table = _table_of_stmt(stmt)
        if table is None:
            return await self._run(stmt, None, None, {}, None, first)
        tree = tree_of(table, joins, top=not bare)
        stmt, plan = self.loader.prepare(stmt, table, tree)
        return await self._run(stmt, None, table, tree, plan, first)

    async def _run(self, stmt: Any, params: Any, table: Table | None, tree: Any,
                   plan: Any, first: bool) -> list[Row]:
        result = (await self.conn.execute(stmt, params)).mappings()
        if first:
            mapping = result.first()
            rows = [dict(mapping)] if mapping is not None else []
        else:
            rows = [dict(m) for m in result]
        if rows and table is not None:
            await self._complete(table, rows, tree, plan)
        return rows

    async def _complete(self, table: Table, rows: list[Row], tree: Any, plan: Any) -> None:
        await self.loader.fetched(self.conn, table, rows, tree, plan)
        complete(table, rows, tree, self.config)

    def query(self, context: RequestContext, model: Any, *, read_deleted: str | None = None,
              project_only: ProjectOnly = False) -> Any:
        """:func:`~conductor.db.query.model_query` for this call: with strict isolation a
        user context's query reaches only rows its project owns (or no project owns)."""
        stmt = model_query(context, model, read_deleted=read_deleted,
                           project_only=project_only)
        if not scoping(context, project_only):
            stmt = stmt.where(*self.visible(context, model))
        return stmt

    # Nova's ``model_query(...).filter(...).all()`` and ``.first()``, in primary-key order
    # (Nova's own order on its backends; a fixed order keeps answers deterministic).

    async def all(self, context: RequestContext, model: Any, *where: Any, joins: Joins = (),
                  read_deleted: str | None = None, project_only: ProjectOnly = False,
                  missing: Callable[[], Exception] | None = None,
                  bare: bool = False) -> list[Row]:
        """Every row of :meth:`query` matching ``where``; ``missing()`` is raised for none
        (see :meth:`rows`)."""
        stmt = self._ordered(context, model, where, read_deleted, project_only)
        return await self.rows(stmt, joins, missing=missing, bare=bare)

    @overload
    async def first(self, context: RequestContext, model: Any, *where: Any,
                    joins: Joins = (), read_deleted: str | None = None,
                    project_only: ProjectOnly = False, missing: None = None,
                    lock: bool = False, bare: bool = False) -> Row | None: ...

    @overload
    async def first(self, context: RequestContext, model: Any, *where: Any,
                    joins: Joins = (), read_deleted: str | None = None,
                    project_only: ProjectOnly = False, missing: Callable[[], Exception],
                    lock: bool = False, bare: bool = False) -> Row: ...

    async def first(self, context: RequestContext, model: Any, *where: Any,
                    joins: Joins = (), read_deleted: str | None = None,
                    project_only: ProjectOnly = False,
                    missing: Callable[[], Exception] | None = None,
                    lock: bool = False, bare: bool = False) -> Row | None:
        """The first row of :meth:`query` matching ``where`` (``FOR UPDATE`` with
        ``lock``), or None; with ``missing``, ``missing()`` is raised instead of None."""
        stmt = self._ordered(context, model, where, read_deleted, project_only).limit(1)
        if lock:
            stmt = stmt.with_for_update()
        row = await self.row(stmt, joins, bare=bare)
        if row is None and missing is not None:
            raise missing()
        return row

    def _ordered(self, context: RequestContext, model: Any, where: tuple[Any, ...],
                 read_deleted: str | None, project_only: ProjectOnly) -> Any:
        return (self.query(context, model, read_deleted=read_deleted,
                           project_only=project_only)
                .where(*where).order_by(primary_key(table_of(model))))

    def visible(self, context: RequestContext, model: Any) -> tuple[Any, ...]:
        """The conditions that keep ``model``'s rows of other projects out of a
        statement for ``context`` (none for admins, ``nova`` isolation and tables no
        project owns): for counts, yes/no answers and writes that name rows by key."""
        if not isolated(context, self.config):
            return ()
        cond = isolation_condition(table_of(model), context.project_id)
        return () if cond is None else (cond,)

    def own_project(self, context: RequestContext, project_id: Any) -> None:
        """Under strict isolation a ``project_id`` argument naming another project than a
        user context's is refused with ``NotAuthorized()`` (api-compute.md §1.1
        "Isolation": the project check on every function that takes one); under
        ``nova`` only the functions whose entry says so check it.  None names the rows
        of no project, which stay visible to everyone."""
        if project_id is not None and isolated(context, self.config):
            authorize_project(context, project_id)

    async def foreign(self, context: RequestContext, model: Any, *where: Any) -> bool:
        """Whether a row of ``model`` matching ``where`` belongs to another project than
        ``context``'s (always False where :meth:`visible` restricts nothing): a write
        naming such a row changes nothing and answers as if the row were missing."""
        visible = self.visible(context, model)
        if not visible:
            return False
        table = table_of(model)
        found = await self.scalar(select(primary_key(table)).where(*where, not_(visible[0]))
                                  .limit(1))
        return found is not None

    async def get_by(self, context: RequestContext, model: Any, column: str, value: Any,
                     joins: Joins = (), *, read_deleted: str | None = None,
                     project_only: ProjectOnly = False, lock: bool = False,
                     bare: bool = False) -> Row | None:
        """The row whose ``column`` equals ``value`` (lowest id first), as
        ``model_query(...).where(equals(column, value))`` finds it, or None.

        The hot lookup of most getters, so its statement is built once per shape and
        reused with new parameters: SQLAlchemy then skips rebuilding and re-keying a
        statement that, with its relationships inline, has hundreds of elements.
        """
        table = table_of(model)
        col = table.c[column]
        wanted = vals.lookup_value(col, value)
        if wanted is vals.NO_MATCH:
            return None
        mode = read_deleted or context.read_deleted
        scope = scoping(context, project_only)
        # project scoping, where asked, is already at least as strict as isolation
        mine = not scope and isolated(context, self.config)
        shape = (table.name, column, wanted is None, mode, scope, mine, tuple(joins), lock,
                 bare, self.loader.name)
        found = _GET_BY.get(shape)
        if found is None:
            found = _GET_BY[shape] = self._get_by_statement(table, col, wanted is None, mode,
                                                            scope, mine, joins, lock, bare)
        stmt, tree, plan, compiled = found
        params = {"_value": wanted, "_project": context.project_id}
        driver = await self._direct_driver() if compiled is not None else None
        if driver is not None:
            assert compiled is not None
            rows = await direct.run(compiled, self.conn, driver, params)
            if rows:
                await self._complete(table, rows[:1], tree, plan)
        else:
            rows = await self._run(stmt, params, table, tree, plan, True)
        return rows[0] if rows else None

    async def _direct_driver(self) -> Any:
        if self._driver is _UNKNOWN:
            self._driver = await direct.driver_for(self.conn)
        return self._driver

    async def get(self, context: RequestContext, model: Any, column: str, value: Any,
                  missing: Callable[[], Exception], joins: Joins = (), *,
                  read_deleted: str | None = None, project_only: ProjectOnly = False,
                  lock: bool = False, bare: bool = False) -> Row:
        """:meth:`get_by`, raising ``missing()`` (the function's not-found error) when no
        row is visible: the lookup -> raise sequence of every getter."""
        row = await self.get_by(context, model, column, value, joins,
                                read_deleted=read_deleted, project_only=project_only,
                                lock=lock, bare=bare)
        if row is None:
            raise missing()
        return row

    async def one(self, stmt: Any, missing: Callable[[], Exception], joins: Joins = (), *,
                  lock: bool = False, bare: bool = False) -> Row:
        """The first row of ``stmt`` as :meth:`row` gives it (``FOR UPDATE`` with
        ``lock``), raising ``missing()`` when there is none."""
        row = await self.row(stmt.with_for_update() if lock else stmt, joins, bare=bare)
        if row is None:
            raise missing()
        return row

    async def pick(self, stmt: Any, exhausted: Callable[[], Exception],
                   joins: Joins = ()) -> Row:
        """A pool pick (api-compute.md §1.10): the first row of ``stmt`` (callers order
        it), locked ``FOR UPDATE SKIP LOCKED`` so that concurrent callers each get the next
        free row instead of all waiting for one, or ``exhausted()`` when none is free."""
        return await self.one(stmt.limit(1).with_for_update(skip_locked=True), exhausted,
                              joins)

    def _get_by_statement(self, table: Table, col: Any, is_null: bool, mode: str,
                          scope: ProjectOnly, mine: bool, joins: Joins, lock: bool,
                          bare: bool) -> tuple[Any, ...]:
        stmt = select(table)
        visible = deleted_filter(table, mode)
        if visible is not None:
            stmt = stmt.where(visible)
        for cond in (project_condition(table, scope, bindparam("_project")),
                     isolation_condition(table, bindparam("_project")) if mine else None):
            if cond is not None:
                stmt = stmt.where(cond)
        stmt = stmt.where(col.is_(None) if is_null
                          else col == bindparam("_value", type_=col.type))
        stmt = stmt.order_by(primary_key(table)).limit(1)
        if lock:
            stmt = stmt.with_for_update()
        tree = tree_of(table, joins, top=not bare)
        stmt, plan = self.loader.prepare(stmt, table, tree)
        return stmt, tree, plan, direct.compile_for(stmt, self.conn.dialect,
                                                    ("_value", "_project"))

    async def lock(self, *key: Any) -> None:
        """Serialise this call with every other one locking the same ``key`` until the
        transaction ends: for a check-then-insert that no row lock can cover (the row
        does not exist yet).  SQLite needs none: the dispatcher runs one call at a time.
        """
        if not self._postgres:
            return
        digest = hashlib.blake2b("\x00".join(map(str, key)).encode(), digest_size=8)
        await self.conn.execute(_ADVISORY_LOCK,
                                {"key": int.from_bytes(digest.digest(), "big", signed=True)})

    async def scalar(self, stmt: Executable) -> Any:
        return (await self.conn.execute(stmt)).scalar()

    async def scalars(self, stmt: Executable) -> list[Any]:
        return list((await self.conn.execute(stmt)).scalars())

    # -- writes -----------------------------------------------------------------------

    def check(self, model: Any, values: Any, allowed_extra: Iterable[str] = (), *,
              strict: bool = False) -> Row:
        """``values`` converted for ``model``'s columns (see :mod:`conductor.db.values`)."""
        return vals.check_values(table_of(model), values, self.function,
                                 allowed_extra=allowed_extra,
                                 strict=strict or self.config.strict_values)

    async def insert(self, model: Any, values: Row, *, checked: bool = False,
                     echo: Row | None = None, creator: RequestContext | None = None,
                     refused: Callable[[], Exception] = exceptions.NotAuthorized) -> Row:
        """Insert a row; returns it with defaults and generated keys filled in.

        With ``creator``, a row its project would not own under strict isolation (a
        ``project_id`` of another project) is refused with ``NotAuthorized()``
        (api-compute.md §1.1 "Isolation"), or ``refused()`` for a row owned through a
        parent of another project (the parent's not-found error); the call's transaction
        undoes the insert.

        ``echo`` overlays the caller's own values on the result, every key of them, stored
        or not (api-compute.md §1.5: Nova's object kept every key it was given, with the
        value given, not what the column made of it).
        """
        table = table_of(model)
        cols = values if checked else self.check(table, values)
        for col in table.primary_key.columns:
            if cols.get(col.name) is None and col is not table.autoincrement_column \
                    and col.default is None and col.server_default is None:
                raise vals.required(table, col.name)
        result = await self.conn.execute(insert(table).values(cols).returning(*table.c))
        row = dict(result.mappings().one())
        pk = primary_key(table)
        if creator is not None and await self.foreign(creator, table, pk == row[pk.name]):
            raise refused()
        if pk.name in cols and self._postgres and pk.autoincrement is not False \
                and isinstance(row[pk.name], int) and row[pk.name] >= 1:
            await self._advance_sequence(table, pk.name, row[pk.name])
        if echo:
            row.update(echo)
        return row

    async def insert_or_skip(self, model: Any, values: Any, *, echo: Row | None = None
                             ) -> Row | None:
        """:meth:`insert`, or None when the row would break a uniqueness constraint of
        the table (the ``*_create_safe`` functions; a create racing another)."""
        table = table_of(model)
        cols = self.check(table, values)
        if self._postgres:
            # A savepoint keeps the call's transaction usable after the violation, and
            # insert() keeps the id sequence ahead of a forced id.
            try:
                async with self.conn.begin_nested():
                    return await self.insert(table, cols, checked=True, echo=echo)
            except sa_exc.IntegrityError as exc:
                if getattr(exc.orig, "sqlstate", None) == _UNIQUE_VIOLATION:
                    return None
                raise
        # SQLite: savepoints are unreliable under pysqlite's implicit transactions; one
        # statement that skips a conflicting row needs none.
        result = await self.conn.execute(sqlite_insert(table).values(cols)
                                         .on_conflict_do_nothing().returning(*table.c))
        found = result.mappings().first()
        if found is None:
            return None
        row = dict(found)
        row.update(echo or {})
        return row

    async def _advance_sequence(self, table: Table, column: str, used: int) -> None:
        """Move the id sequence past an id the caller forced, so later inserts don't
        collide with it (models.md §3); it never moves backwards."""
        await self.conn.execute(
            text("SELECT setval(pg_get_serial_sequence(:t, :c), "
                 "GREATEST(:used, (SELECT last_value FROM "
                 "pg_sequences WHERE schemaname || '.' || sequencename = "
                 "pg_get_serial_sequence(:t, :c))))"),
            {"t": table.name, "c": column, "used": used})

    async def update(self, model: Any, row: Row, values: Row, *, checked: bool = False,
                     echo: Row | None = None) -> Row:
        """Object-style save of ``row``: an UPDATE only when some value really changes.

        ``updated_at`` moves with the UPDATE unless ``values`` sets it; ``row`` is updated
        in place and returned.
        """
        table = table_of(model)
        cols = values if checked else self.check(table, values)
        changed = {k: v for k, v in cols.items() if k not in row or row[k] != v
                   or type(row[k]) is not type(v)}
        if changed:
            pk = primary_key(table)
            # onupdate defaults (updated_at) computed here, so the statement can run direct
            for col in _on_update(table):
                if col.name not in changed:
                    changed[col.name] = col.onupdate.arg(None)
            params = {f"_v_{k}": v for k, v in changed.items()}
            params["_pk"] = row[pk.name]
            statement = _update_statement(table, tuple(changed))
            if statement is None:  # too many shapes cached already
                result = await self.conn.execute(update(table).where(pk == row[pk.name])
                                                 .values(changed).returning(*table.c))
                found = [dict(m) for m in result.mappings()]
            else:
                found = await statement.execute(self.conn, params)
            fresh = found[0] if found else None
            if fresh is not None:
                row.update({k: fresh[k] for k in table.c.keys()})
        if echo:
            row.update(echo)
        return row

    # Soft delete (api-compute.md §1.3): one row as Nova's object delete does it, or every
    # matching row in one statement.

    async def soft_delete(self, model: Any, row: Row, *, flag_only: bool = False) -> Row:
        """Object soft delete of ``row`` (updated in place): ``deleted`` and
        ``deleted_at`` set, ``updated_at`` moves; ``flag_only`` leaves ``deleted_at``
        NULL, as Nova's saves of ``deleted=True`` by hand do (metadata, stats)."""
        values: Row = {"deleted": True} if flag_only else {"deleted": True,
                                                            "deleted_at": utcnow()}
        return await self.update(model, row, values, checked=True)

    async def soft_delete_where(self, model: Any, *where: Any, touch: bool = False) -> int:
        """Soft delete of every row matching ``where`` in one statement: Nova's bulk
        ``update()`` keeps ``updated_at``; ``touch`` moves it, as Nova's per-row
        ``delete()`` loops do (quotas, reservations)."""
        table = table_of(model)
        stamp = {} if touch else {"updated_at": table.c.updated_at}
        result = await self.conn.execute(
            update(table).where(*where).values(deleted=True, deleted_at=utcnow(), **stamp))
        return result.rowcount

    async def hard_delete_where(self, model: Any, *where: Any) -> int:
        table = table_of(model)
        result = await self.conn.execute(delete(table).where(*where))
        return result.rowcount

    # -- relationships and computed keys ---------------------------------------------

    async def load(self, model: Any, rows: list[Row], joins: Joins = ()) -> None:
        """Make ``rows`` (from an INSERT, an UPDATE, or an earlier read) results of
        ``model``: load ``joins`` (dotted for nested: ``security_groups.rules``) and the
        relationships the table always carries that the rows lack yet, then computed
        keys.  Relationships already in the rows and not named are kept as they are."""
        if not rows:
            return
        table = table_of(model)
        full = tree_of(table, joins)
        asked = tree_of(table, joins, top=False)
        tree = {k: v for k, v in full.items() if k in asked or k not in rows[0]}
        if tree:
            await self.loader.attach(self.conn, table, rows, tree)
        complete(table, rows, full, self.config)


_UNIQUE_VIOLATION = "23505"
_UPDATES: dict[tuple[str, tuple[str, ...]], direct.Statement] = {}
_MAX_UPDATE_SHAPES = 512  # bounded: callers choose the column sets


@functools.cache
def _on_update(table: Table) -> tuple[Any, ...]:
    return tuple(c for c in table.c if c.onupdate is not None and c.onupdate.is_callable)


def _update_statement(table: Table, names: tuple[str, ...]) -> direct.Statement | None:
    """The UPDATE ... RETURNING of these columns by primary key, built once per shape."""
    key = (table.name, names)
    statement = _UPDATES.get(key)
    if statement is None and len(_UPDATES) < _MAX_UPDATE_SHAPES:
        pk = primary_key(table)
        stmt = (update(table).where(pk == bindparam("_pk", type_=pk.type))
                .values({n: bindparam(f"_v_{n}", type_=table.c[n].type) for n in names})
                .returning(*table.c))
        statement = _UPDATES[key] = direct.Statement(
            stmt, ("_pk", *(f"_v_{n}" for n in names)))
    return statement
_UNKNOWN = object()
_GET_BY: dict[tuple[Any, ...], tuple[Any, ...]] = {}
_ADVISORY_LOCK = select(func.pg_advisory_xact_lock(bindparam("key", type_=BigInteger)))
def _table_of_stmt(stmt: Any) -> Table | None:
    """The table whose columns a ``select(table)`` statement returns."""
    froms = getattr(stmt, "columns_clause_froms", None)
    if froms:
        first = froms[0]
        if isinstance(first, Table):
            return first
    return None


def rows_as_dict(rows: Iterable[Row], key: str = "key", value: str = "value") -> dict[str, Any]:
    """``[{key: k, value: v}, ...]`` -> ``{k: v}``, as Nova's metadata getters return."""
    return {r[key]: r[value] for r in rows}
