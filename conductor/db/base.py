"""Declarative base, the four columns every table has, and the relationship registry.

Handlers work with SQLAlchemy Core on plain row dicts (one round trip per statement, no
identity map), so relationships are not ORM ``relationship()`` objects: each is declared once
with :func:`relation`, naming its join condition exactly as ``models.md`` gives it (soft-delete
filters included), and the loaders in :mod:`conductor.db.query` read this registry.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Boolean, ColumnElement, DateTime, MetaData, Table, false
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    """Naive UTC now, the only kind of datetime the database holds."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class NovaBase:
    """The common base of every Nova model (models.md §1)."""

    @declared_attr
    def created_at(cls) -> Mapped[dt.datetime | None]:
        return mapped_column(DateTime, default=utcnow)

    @declared_attr
    def updated_at(cls) -> Mapped[dt.datetime | None]:
        # onupdate fires for every Core UPDATE that does not assign updated_at itself.
        return mapped_column(DateTime, onupdate=utcnow)

    @declared_attr
    def deleted_at(cls) -> Mapped[dt.datetime | None]:
        return mapped_column(DateTime)

    @declared_attr
    def deleted(cls) -> Mapped[bool | None]:
        return mapped_column(Boolean, default=False, server_default=false())


@dataclass
class Relation:
    """One relationship: rows of ``target`` joined to a ``parent`` row.

    ``join`` is the full join condition between ``parent`` and ``target`` (through
    ``secondary`` when given, in which case ``join`` relates parent to secondary and
    ``secondary_join`` secondary to target).
    """

    parent: Table
    name: str
    target: Table
    join: Callable[[], ColumnElement[bool]]
    uselist: bool = True
    secondary: Table | None = None
    secondary_join: Callable[[], ColumnElement[bool]] | None = None


RELATIONS: dict[tuple[str, str], Relation] = {}

# table name -> function(row dict) -> {extra key: value}, for computed attributes
COMPUTED: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {}


def relation(parent: Any, name: str, target: Any, join: Callable[[], ColumnElement[bool]],
             *, uselist: bool = True, secondary: Any = None,
             secondary_join: Callable[[], ColumnElement[bool]] | None = None) -> Relation:
    """Register ``parent.name``; ``parent``/``target``/``secondary`` are models or tables."""
    rel = Relation(_table(parent), name, _table(target), join, uselist,
                   _table(secondary) if secondary is not None else None, secondary_join)
    RELATIONS[(rel.parent.name, name)] = rel
    return rel


def get_relation(table: Table | str, name: str) -> Relation:
    key = table if isinstance(table, str) else table.name
    return RELATIONS[(key, name)]


def _table(obj: Any) -> Table:
    return obj if isinstance(obj, Table) else obj.__table__


@dataclass
class Config:
    """Options of the conductor that change results (models.md §1.2)."""

    instance_name_template: str = "instance-%08x"
    volume_name_template: str = "volume-%s"
    snapshot_name_template: str = "snapshot-%s"
    enable_new_services: bool = True
    strict_values: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


CONFIG = Config()
