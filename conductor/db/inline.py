"""PostgreSQL: a row and all the relationships a call returns, in one statement.

Each relationship becomes a correlated subquery in the row's own SELECT list:
``ARRAY(SELECT ROW(child.*, <its relationships>) ... ORDER BY child.id)`` (with
``LIMIT 1`` for a single row).  asyncpg decodes those records with
their real column types (datetimes, booleans, nested arrays), so the result equals what
one query per relationship gives, for one round trip instead of one per relationship.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, ColumnElement, Table, exists, func, select
from sqlalchemy.sql import operators, visitors
from sqlalchemy.sql.elements import BinaryExpression, BooleanClauseList

from conductor.db.base import Relation, get_relation

Tree = dict[str, dict[str, Any]]


@dataclass(frozen=True)
class Shape:
    """How one relationship's values are laid out in its records."""

    name: str
    label: str
    uselist: bool
    columns: tuple[str, ...]
    children: tuple[Shape, ...]


def _subquery(rel: Relation, tree: Tree) -> tuple[ColumnElement[Any], Shape]:
    target = rel.target
    nested = [_subquery(get_relation(target, name), sub) for name, sub in tree.items()]
    record = func.row(*target.c, *[col for col, _ in nested])
    pk = next(iter(target.primary_key.columns))
    link = _link(rel) if rel.secondary is not None else None
    if link is not None:
        # Through an association table: for each live link row, its target row looked up
        # by key, so PostgreSQL reads targets by primary key (as a join it hashed the
        # whole target table for every parent row); a link listed twice shows twice.
        secondary_key, target_key, target_only = link
        by_key = [target_key == secondary_key, *target_only]
        one = (select(record).select_from(target).where(*by_key)
               .correlate(rel.secondary).scalar_subquery())
        secondary_pk = next(iter(rel.secondary.primary_key.columns))
        inner = (select(one).select_from(rel.secondary)
                 .where(rel.join(), exists(select(pk).where(*by_key)
                                           .correlate(rel.secondary)))
                 .correlate(rel.parent).order_by(secondary_key, secondary_pk))
    else:
        source = target if rel.secondary is None else \
            target.join(rel.secondary, rel.secondary_join())  # type: ignore[misc]
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
    assert rel.secondary_join is not None
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


_CACHE: dict[tuple[str, tuple[tuple[str, Any], ...]], tuple[list[Any], list[Shape]]] = {}


def _freeze(tree: Tree) -> tuple[tuple[str, Any], ...]:
    return tuple((k, _freeze(v)) for k, v in tree.items())


def columns_for(table: Table, tree: Tree) -> tuple[list[Any], list[Shape]]:
    """The extra SELECT-list columns that load ``tree`` for rows of ``table``."""
    key = (table.name, _freeze(tree))
    found = _CACHE.get(key)
    if found is None:
        columns, shapes = [], []
        for name, sub in tree.items():
            column, shape = _subquery(get_relation(table, name), sub)
            columns.append(column.label(shape.label))
            shapes.append(shape)
        found = _CACHE[key] = (columns, shapes)
    return found


def unpack(row: dict[str, Any], shapes: list[Shape]) -> None:
    """Replace the labelled record columns of ``row`` by nested row dicts."""
    for shape in shapes:
        row[shape.name] = _decode(shape, row.pop(shape.label))


def _decode(shape: Shape, value: Any) -> Any:
    if shape.uselist:
        return [_record(shape, item) for item in value or ()]
    return _record(shape, value[0]) if value else None


def _record(shape: Shape, values: Any) -> dict[str, Any]:
    n = len(shape.columns)
    row = dict(zip(shape.columns, values[:n], strict=True))
    for i, child in enumerate(shape.children):
        row[child.name] = _decode(child, values[n + i])
    return row
