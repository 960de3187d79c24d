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

from sqlalchemy import ColumnElement, Table, func, select

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
    source = target if rel.secondary is None else \
        target.join(rel.secondary, rel.secondary_join())  # type: ignore[misc]
    pk = next(iter(target.primary_key.columns))
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
