"""Loading what a row carries: its relationships (``joins``) and computed keys.

What each table's rows carry is declared next to the table (``__carries__`` in
:mod:`conductor.db.models`); this module reads those declarations and loads them, with
one of two strategies behind one interface (:class:`Loader`), chosen once per connection
by :func:`loader_for`:

* :class:`InlineLoader` (PostgreSQL): every relationship becomes a correlated subquery in
  the row's own SELECT list, ``ARRAY(SELECT ROW(child.*, <its relationships>) ... ORDER
  BY child.id)``.  asyncpg decodes those records with their real column types, so a row
  and everything nested in it arrive in one round trip.
* :class:`PerRelationLoader` (everywhere else): one query per relationship for all
  parent rows at once.

SQLAlchemy's ``relationship()`` with ``selectinload`` would express the same joins, but
costs one round trip per relationship (five for an instance) and ORM objects to unpack;
the inline arrays give one round trip per call, which is what keeps
``instance_get_by_uuid`` at its measured speed.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Column, ColumnElement, Table, bindparam, exists, func, select
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import operators, visitors
from sqlalchemy.sql.elements import BinaryExpression, BooleanClauseList

from conductor.db.base import Base, Config
from conductor.db.models import carries

Row = dict[str, Any]
Tree = dict[str, "Tree"]


@dataclass(frozen=True)
class Relation:
    """A declared relationship resolved to tables: rows of ``target`` for a ``parent``
    row (through ``secondary`` when given)."""

    parent: Table
    name: str
    target: Table
    join: Any
    uselist: bool
    secondary: Table | None
    secondary_join: Any


@functools.cache
def relation(table: Table, name: str) -> Relation:
    """``table``'s relationship ``name``; KeyError when the table declares none."""
    rel = carries(table).relations[name]
    tables = Base.metadata.tables
    return Relation(table, name, tables[rel.target], rel.on, rel.uselist,
                    tables[rel.through] if rel.through else None, rel.through_on)


@functools.cache
def _tree(table: Table, joins: tuple[str, ...], top: bool) -> Tree:
    tree: Tree = {}
    for path in (*joins, *(carries(table).always if top else ())):
        node = tree
        for part in path.split("."):
            node = node.setdefault(part, {})
    return tree


def tree_of(table: Table, joins: Any, *, top: bool = True) -> Tree:
    """The relationships to load: ``joins`` (dotted for nested: ``security_groups.rules``)
    and, on ``top``-level rows, those the table always carries (api-compute.md §1.6)."""
    return _tree(table, tuple(joins), top)


def complete(table: Table, rows: list[Row], tree: Tree, config: Config) -> None:
    """Computed keys on ``rows`` and on the loaded ``tree`` below them; ``_`` keys
    (relationships that only feed computed keys) dropped."""
    for name, subtree in tree.items():
        rel = relation(table, name)
        children: list[Row] = []
        for row in rows:
            value = row.get(name)
            if rel.uselist:
                children.extend(value or ())
            elif value is not None:
                children.append(value)
        if children:
            complete(rel.target, children, subtree, config)
    compute = carries(table).computed
    hidden = _hidden(table)
    if compute is None and not hidden:
        return
    for row in rows:
        if compute is not None:
            row.update(compute(row, config))
        for key in hidden:
            row.pop(key, None)


@functools.cache
def _hidden(table: Table) -> tuple[str, ...]:
    return tuple(name for name in carries(table).relations if name.startswith("_"))


def primary_key(table: Table) -> Any:
    return next(iter(table.primary_key.columns))


class Loader(Protocol):
    """How relationships get into rows; ``name`` keys statement caches."""

    name: str

    def prepare(self, stmt: Any, table: Table, tree: Tree) -> tuple[Any, Any]:
        """``stmt`` ready to run, and what :meth:`fetched` needs to finish its rows."""

    async def fetched(self, conn: AsyncConnection, table: Table, rows: list[Row],
                      tree: Tree, plan: Any) -> None:
        """Fill ``tree`` into ``rows`` read by a statement from :meth:`prepare`."""

    async def attach(self, conn: AsyncConnection, table: Table, rows: list[Row],
                     tree: Tree) -> None:
        """Fill ``tree`` into ``rows`` that came from elsewhere (an INSERT, an UPDATE)."""


class PerRelationLoader:
    """One query per relationship, for all parent rows at once."""

    name = "per-relation"

    def prepare(self, stmt: Any, table: Table, tree: Tree) -> tuple[Any, Any]:
        return stmt, None

    async def fetched(self, conn: AsyncConnection, table: Table, rows: list[Row],
                      tree: Tree, plan: Any) -> None:
        await self.attach(conn, table, rows, tree)

    async def attach(self, conn: AsyncConnection, table: Table, rows: list[Row],
                     tree: Tree) -> None:
        for name, subtree in tree.items():
            rel = relation(table, name)
            children = await self._load(conn, rel, rows)
            if children and subtree:
                await self.attach(conn, rel.target, children, subtree)

    async def _load(self, conn: AsyncConnection, rel: Relation, rows: list[Row]
                    ) -> list[Row]:
        parent_pk = primary_key(rel.parent)
        keys = list(dict.fromkeys(r[parent_pk.name] for r in rows))
        result = await conn.execute(_relation_statement(rel), {"keys": keys})
        grouped: dict[Any, list[Row]] = defaultdict(list)
        children: list[Row] = []
        for mapping in result.mappings():
            child = dict(mapping)
            grouped[child.pop("_parent_key")].append(child)
            children.append(child)
        for row in rows:
            found = grouped.get(row[parent_pk.name], [])
            row[rel.name] = list(found) if rel.uselist else (found[0] if found else None)
        return children


@functools.cache
def _relation_statement(rel: Relation) -> Any:
    parent_pk = primary_key(rel.parent)
    if rel.secondary is not None:
        joined = rel.parent.join(rel.secondary, rel.join()).join(rel.target,
                                                                 rel.secondary_join())
    else:
        joined = rel.parent.join(rel.target, rel.join())
    return (select(parent_pk.label("_parent_key"), *rel.target.c)
            .select_from(joined)
            .where(parent_pk.in_(bindparam("keys", expanding=True)))
            .order_by(parent_pk, primary_key(rel.target)))


@dataclass(frozen=True)
class Shape:
    """How one relationship's values are laid out in its records."""

    name: str
    label: str
    uselist: bool
    columns: tuple[str, ...]
    children: tuple[Shape, ...]


class InlineLoader:
    """PostgreSQL: the rows and every relationship in one statement."""

    name = "inline"

    def prepare(self, stmt: Any, table: Table, tree: Tree) -> tuple[Any, Any]:
        if not tree:
            return stmt, None
        columns, shapes = _inline_columns(table, _freeze(tree))
        return stmt.add_columns(*columns), shapes

    async def fetched(self, conn: AsyncConnection, table: Table, rows: list[Row],
                      tree: Tree, plan: Any) -> None:
        if plan is not None:
            for row in rows:
                _unpack(row, plan)

    async def attach(self, conn: AsyncConnection, table: Table, rows: list[Row],
                     tree: Tree) -> None:
        if not tree:
            return
        pk = primary_key(table)
        stmt, shapes = _attach_statement(table, _freeze(tree))
        keys = list(dict.fromkeys(r[pk.name] for r in rows))
        found = {}
        for mapping in (await conn.execute(stmt, {"keys": keys})).mappings():
            loaded = dict(mapping)
            _unpack(loaded, shapes)
            found[loaded.pop("_key")] = loaded
        for row in rows:
            # a row gone since it was read (deleted in this call) has nothing to carry
            row.update(found.get(row[pk.name]) or _empty(shapes))


def _empty(shapes: list[Shape]) -> Row:
    return {s.name: [] if s.uselist else None for s in shapes}


Frozen = tuple[tuple[str, Any], ...]


def _freeze(tree: Tree) -> Frozen:
    return tuple((k, _freeze(v)) for k, v in tree.items())


@functools.cache
def _inline_columns(table: Table, tree: Frozen) -> tuple[list[Any], list[Shape]]:
    columns, shapes = [], []
    for name, sub in tree:
        column, shape = _subquery(relation(table, name), sub)
        columns.append(column.label(shape.label))
        shapes.append(shape)
    return columns, shapes


@functools.cache
def _attach_statement(table: Table, tree: Frozen) -> tuple[Any, list[Shape]]:
    pk = primary_key(table)
    columns, shapes = _inline_columns(table, tree)
    stmt = (select(pk.label("_key"), *columns)
            .where(pk.in_(bindparam("keys", expanding=True))))
    return stmt, shapes


def _subquery(rel: Relation, tree: Frozen) -> tuple[ColumnElement[Any], Shape]:
    target = rel.target
    nested = [_subquery(relation(target, name), sub) for name, sub in tree]
    record = func.row(*target.c, *[col for col, _ in nested])
    pk = primary_key(target)
    link = _link(rel) if rel.secondary is not None else None
    if link is not None:
        # Through an association table: for each live link row, its target row looked up
        # by key, so PostgreSQL reads targets by primary key (as a join it hashed the
        # whole target table for every parent row); a link listed twice shows twice.
        assert rel.secondary is not None
        secondary_key, target_key, target_only = link
        by_key = [target_key == secondary_key, *target_only]
        one = (select(record).select_from(target).where(*by_key)
               .correlate(rel.secondary).scalar_subquery())
        secondary_pk = primary_key(rel.secondary)
        # Lists come in the target's id order (as one query per relationship gives
        # them); a link by another key (a group's instances, by uuid) looks the id up.
        target_order = secondary_key if target_key is pk else \
            select(pk).where(*by_key).correlate(rel.secondary).scalar_subquery()
        inner = (select(one).select_from(rel.secondary)
                 .where(rel.join(), exists(select(pk).where(*by_key)
                                           .correlate(rel.secondary)))
                 .correlate(rel.parent).order_by(target_order, secondary_pk))
    else:
        source = target if rel.secondary is None else \
            target.join(rel.secondary, rel.secondary_join())
        inner = (select(record).select_from(source).where(rel.join())
                 .correlate(rel.parent).order_by(pk))
    label = f"_inline_{rel.name}"
    # A single row travels as an array of at most one record too: asyncpg cannot decode a
    # bare record whose fields hold record arrays (a rule's grantee group's instances).
    column: ColumnElement[Any] = func.array(
        (inner if rel.uselist else inner.limit(1)).scalar_subquery())
    shape = Shape(rel.name, label, rel.uselist, tuple(target.c.keys()),
                  tuple(s for _, s in nested))
    return column, shape


def _link(rel: Relation) -> tuple[Any, Any, list[Any]] | None:
    """Split ``secondary_join`` into the ``secondary.col = target.col`` link and the
    conditions on the target alone; None when it has another shape."""
    cond = rel.secondary_join()
    clauses = list(cond.clauses) if isinstance(cond, BooleanClauseList) else [cond]
    link = None
    rest = []
    for clause in clauses:
        if link is None and isinstance(clause, BinaryExpression) and \
                clause.operator is operators.eq and \
                isinstance(clause.left, Column) and isinstance(clause.right, Column):
            sides = {clause.left.table: clause.left, clause.right.table: clause.right}
            if set(sides) == {rel.secondary, rel.target}:
                link = (sides[rel.secondary], sides[rel.target])
                continue
        if any(col.table is not rel.target for col in _columns(clause)):
            return None
        rest.append(clause)
    return None if link is None else (link[0], link[1], rest)


def _columns(clause: Any) -> list[Column[Any]]:
    return [c for c in visitors.iterate(clause) if isinstance(c, Column)]


def _unpack(row: Row, shapes: list[Shape]) -> None:
    """Replace the labelled record columns of ``row`` by nested row dicts."""
    for shape in shapes:
        row[shape.name] = _decode(shape, row.pop(shape.label))


def _decode(shape: Shape, value: Any) -> Any:
    if shape.uselist:
        return [_record(shape, item) for item in value or ()]
    return _record(shape, value[0]) if value else None


def _record(shape: Shape, values: Any) -> Row:
    n = len(shape.columns)
    row = dict(zip(shape.columns, values[:n], strict=True))
    for i, child in enumerate(shape.children):
        row[child.name] = _decode(child, values[n + i])
    return row


INLINE = InlineLoader()
PER_RELATION = PerRelationLoader()


def loader_for(dialect: Dialect) -> Loader:
    """The strategy for a database: inline arrays where records decode with their types
    (asyncpg), one query per relationship elsewhere.  The one place a dialect is named."""
    return INLINE if dialect.name == "postgresql" else PER_RELATION
