"""One call's unit of work: a Core connection in a transaction, and row-dict helpers.

Rows are plain dicts from the start (column name -> value); relationships are loaded into
them with one query per relationship for all parent rows at once, and computed attributes
(``instance['name']``, ``volume['name']``, ...) are added by :meth:`Session.finish`.  The
dicts that handlers return are what the caller receives.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    Executable,
    Table,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from conductor.db import inline
from conductor.db import values as vals
from conductor.db.base import COMPUTED, CONFIG, RELATIONS, Config, Relation, get_relation, utcnow
from conductor.db.query import ProjectOnly, deleted_filter, is_user_context, table_of
from schemas.context import RequestContext

log = logging.getLogger(__name__)

Row = dict[str, Any]
Joins = Sequence[str]


class Session:
    """What a handler gets as its first argument."""

    def __init__(self, conn: AsyncConnection, function: str = "",
                 config: Config = CONFIG) -> None:
        self.conn = conn
        self.function = function
        self.config = config
        self.dialect = conn.dialect.name
        self.events_recorded = 0  # outbox rows written (conductor.db.events)
        self.deferred_error: Exception | None = None

    def fail_after_commit(self, error: Exception) -> None:
        """Answer with ``error`` but keep what the call wrote (quota_reserve's refreshes
        before OverQuota, api-network-quota-storage.md §4.3); in a job queue the error
        still undoes the whole batch."""
        self.deferred_error = error

    # -- plain statements -----------------------------------------------------------

    async def execute(self, stmt: Executable, params: Any = None) -> Any:
        return await self.conn.execute(stmt, params)

    async def rows(self, stmt: Executable, joins: Joins = ()) -> list[Row]:
        """All rows of ``stmt`` as dicts, with ``joins`` loaded and computed keys added."""
        return await self._fetch(stmt, joins, first=False)

    async def row(self, stmt: Executable, joins: Joins = ()) -> Row | None:
        """The first row of ``stmt`` (callers order it), or None."""
        rows = await self._fetch(stmt, joins, first=True)
        return rows[0] if rows else None

    async def _fetch(self, stmt: Any, joins: Joins, first: bool) -> list[Row]:
        table = _table_of_stmt(stmt)
        tree = _join_tree(joins)
        shapes = None
        if tree and table is not None and self.dialect == "postgresql":
            # One round trip for the rows and every relationship (conductor.db.inline).
            columns, shapes = inline.columns_for(table, tree)
            stmt = stmt.add_columns(*columns)
        return await self._run(stmt, None, table, tree, shapes, first)

    async def _run(self, stmt: Any, params: Any, table: Table | None, tree: Any,
                   shapes: Any, first: bool) -> list[Row]:
        result = (await self.conn.execute(stmt, params)).mappings()
        if first:
            mapping = result.first()
            rows = [dict(mapping)] if mapping is not None else []
        else:
            rows = [dict(m) for m in result]
        if rows and table is not None:
            if shapes is not None:
                for row in rows:
                    inline.unpack(row, shapes)
                _complete(table, rows, tree)
            else:
                await self._load_tree(table, rows, tree)
        return rows

    async def get_by(self, context: RequestContext, model: Any, column: str, value: Any,
                     joins: Joins = (), *, read_deleted: str | None = None,
                     project_only: ProjectOnly = False, lock: bool = False) -> Row | None:
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
        scope = project_only if project_only and is_user_context(context) else False
        shape = (table.name, column, wanted is None, mode, scope, tuple(joins), lock,
                 self.dialect)
        found = _GET_BY.get(shape)
        if found is None:
            found = _GET_BY[shape] = self._get_by_statement(table, col, wanted is None, mode,
                                                            scope, joins, lock)
        stmt, tree, shapes = found
        params = {"_value": wanted, "_project": context.project_id}
        rows = await self._run(stmt, params, table, tree, shapes, True)
        return rows[0] if rows else None

    def _get_by_statement(self, table: Table, col: Any, is_null: bool, mode: str,
                          scope: ProjectOnly, joins: Joins, lock: bool) -> tuple[Any, ...]:
        stmt = select(table)
        visible = deleted_filter(table, mode)
        if visible is not None:
            stmt = stmt.where(visible)
        if scope:
            mine = table.c.project_id == bindparam("_project")
            stmt = stmt.where(or_(mine, table.c.project_id.is_(None))
                              if scope == "allow_none" else mine)
        stmt = stmt.where(col.is_(None) if is_null
                          else col == bindparam("_value", type_=col.type))
        stmt = stmt.order_by(_primary_key(table)).limit(1)
        if lock:
            stmt = stmt.with_for_update()
        tree = _join_tree(joins)
        shapes = None
        if tree and self.dialect == "postgresql":
            columns, shapes = inline.columns_for(table, tree)
            stmt = stmt.add_columns(*columns)
        return stmt, tree, shapes

    async def lock(self, *key: Any) -> None:
        """Serialise this call with every other one locking the same ``key`` until the
        transaction ends: for a check-then-insert that no row lock can cover (the row
        does not exist yet).  SQLite needs none: the dispatcher runs one call at a time.
        """
        if self.dialect != "postgresql":
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
                     echo: Row | None = None) -> Row:
        """Insert a row; returns it with defaults and generated keys filled in.

        ``echo`` overlays the caller's own values on the result (api-compute.md §1.5: a
        create returns what the caller gave, not what the column made of it).
        """
        table = table_of(model)
        cols = values if checked else self.check(table, values)
        for col in table.primary_key.columns:
            if cols.get(col.name) is None and col is not table.autoincrement_column \
                    and col.default is None and col.server_default is None:
                raise vals.required(table, col.name)
        result = await self.conn.execute(insert(table).values(cols).returning(*table.c))
        row = dict(result.mappings().one())
        pk = _primary_key(table)
        if pk.name in cols and self.dialect == "postgresql" and pk.autoincrement is not False \
                and isinstance(row[pk.name], int) and row[pk.name] >= 1:
            await self._advance_sequence(table, pk.name, row[pk.name])
        if echo:
            row.update({k: v for k, v in echo.items() if k in table.c})
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
            pk = _primary_key(table)
            result = await self.conn.execute(
                update(table).where(pk == row[pk.name]).values(changed)
                .returning(*table.c))
            fresh = result.mappings().first()
            if fresh is not None:
                row.update({k: fresh[k] for k in table.c.keys()})
        if echo:
            row.update({k: v for k, v in echo.items() if k in table.c})
        return row

    async def soft_delete(self, model: Any, row: Row) -> Row:
        """Object soft delete: ``deleted``, ``deleted_at`` set, ``updated_at`` moves."""
        now = utcnow()
        return await self.update(model, row, {"deleted": True, "deleted_at": now},
                                 checked=True)

    async def soft_delete_where(self, model: Any, *where: Any) -> int:
        """Bulk soft delete of matching rows; ``updated_at`` is kept (api §1.3)."""
        table = table_of(model)
        result = await self.conn.execute(
            update(table).where(*where).values(deleted=True, deleted_at=utcnow(),
                                               updated_at=table.c.updated_at))
        return result.rowcount

    async def hard_delete_where(self, model: Any, *where: Any) -> int:
        table = table_of(model)
        result = await self.conn.execute(delete(table).where(*where))
        return result.rowcount

    # -- relationships and computed keys ---------------------------------------------

    async def finish(self, table: Table | None, rows: list[Row], joins: Joins = ()) -> None:
        """Load ``joins`` (dotted for nested: ``security_groups.rules``) into ``rows``
        and add computed keys; keys starting with ``_`` are dropped afterwards."""
        if table is None:
            return
        await self._load_tree(table, rows, _join_tree(joins))

    async def load(self, model: Any, rows: list[Row], joins: Joins) -> None:
        await self.finish(table_of(model), rows, joins)

    async def _load_tree(self, table: Table, rows: list[Row],
                         tree: dict[str, dict[str, Any]]) -> None:
        for name, subtree in tree.items():
            rel = get_relation(table, name)
            children = await self._load_relation(rel, rows)
            if children:
                await self._load_tree(rel.target, children, subtree)
        _complete(table, rows, {})

    async def _load_relation(self, rel: Relation, rows: list[Row]) -> list[Row]:
        parent_pk = _primary_key(rel.parent)
        keys = list(dict.fromkeys(r[parent_pk.name] for r in rows))
        stmt = _relation_statement(rel)
        result = await self.conn.execute(stmt, {"keys": keys})
        grouped: dict[Any, list[Row]] = defaultdict(list)
        children: list[Row] = []
        for mapping in result.mappings():
            child = dict(mapping)
            parent_key = child.pop("_parent_key")
            grouped[parent_key].append(child)
            children.append(child)
        for row in rows:
            found = grouped.get(row[parent_pk.name], [])
            if rel.uselist:
                row[rel.name] = list(found)
            else:
                row[rel.name] = found[0] if found else None
        return children


_GET_BY: dict[tuple[Any, ...], tuple[Any, ...]] = {}
_ADVISORY_LOCK = select(func.pg_advisory_xact_lock(bindparam("key", type_=BigInteger)))
_RELATION_STATEMENTS: dict[int, Any] = {}


def _relation_statement(rel: Relation) -> Any:
    stmt = _RELATION_STATEMENTS.get(id(rel))
    if stmt is None:
        parent_pk = _primary_key(rel.parent)
        source = rel.parent
        if rel.secondary is not None:
            assert rel.secondary_join is not None
            joined = source.join(rel.secondary, rel.join()).join(rel.target,
                                                                 rel.secondary_join())
        else:
            joined = source.join(rel.target, rel.join())
        target_pk = _primary_key(rel.target)
        stmt = (select(parent_pk.label("_parent_key"), *rel.target.c)
                .select_from(joined)
                .where(parent_pk.in_(bindparam("keys", expanding=True)))
                .order_by(parent_pk, target_pk))
        _RELATION_STATEMENTS[id(rel)] = stmt
    return stmt


def _complete(table: Table, rows: list[Row], tree: dict[str, dict[str, Any]]) -> None:
    """Computed keys on ``rows`` and the loaded ``tree`` below them; ``_`` keys dropped."""
    for name, subtree in tree.items():
        rel = get_relation(table, name)
        children: list[Row] = []
        for row in rows:
            value = row.get(name)
            if rel.uselist:
                children.extend(value or ())
            elif value is not None:
                children.append(value)
        if children:
            _complete(rel.target, children, subtree)
    compute = COMPUTED.get(table.name)
    hidden = _hidden_keys(table.name)
    if compute is None and not hidden:
        return
    for row in rows:
        if compute is not None:
            row.update(compute(row))
        for key in hidden:
            row.pop(key, None)


@functools.cache
def _hidden_keys(table_name: str) -> tuple[str, ...]:
    """Relationships named ``_x`` (aggregates' hosts and metadata) feed computed keys and
    are not part of the result, as Nova's iteritems() skips ``_`` attributes."""
    return tuple(name for parent, name in RELATIONS if parent == table_name
                 and name.startswith("_"))


def _join_tree(joins: Joins) -> dict[str, dict[str, Any]]:
    tree: dict[str, dict[str, Any]] = {}
    for path in joins:
        node = tree
        for part in path.split("."):
            node = node.setdefault(part, {})
    return tree


def _primary_key(table: Table) -> Any:
    return next(iter(table.primary_key.columns))


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
