"""Declarative base, the four columns every table has, and how a table declares what its
rows carry (:class:`Carries`).

Handlers work with SQLAlchemy Core on plain row dicts (one round trip per statement, no
identity map), so relationships are not ORM ``relationship()`` objects: each table lists
its own in a ``__carries__`` attribute, and :mod:`conductor.db.loading` reads them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Boolean, ColumnElement, DateTime, MetaData, false
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


@dataclass(frozen=True)
class Rel:
    """One relationship as a table declares it: rows of the table named ``target``.

    ``on`` is the whole join condition exactly as models.md states it (soft-delete
    filters included).  Through an association table, ``on`` relates the declaring
    table to ``through`` and ``through_on`` relates ``through`` to the target.  The
    conditions are functions so that they may name models declared further down.
    """

    target: str
    on: Callable[[], ColumnElement[bool]]
    uselist: bool = True
    through: str | None = None
    through_on: Callable[[], ColumnElement[bool]] | None = None


@dataclass(frozen=True)
class Carries:
    """What a row of one table carries beyond its columns, declared next to the table.

    ``relations`` are what callers may ask to nest (``joins``); ``always`` are loaded
    on every top-level row a function returns, because Nova's objects loaded them on
    first access and its callers read them (api-compute.md §1.6); ``computed`` adds
    derived keys (models.md §1.2); relationships named ``_x`` only feed ``computed``
    and are dropped from the result, as Nova's iteritems() skips ``_`` attributes;
    ``owner`` says which project owns a row (None: operators' configuration, no project).
    """

    relations: Mapping[str, Rel] = field(default_factory=dict)
    always: tuple[str, ...] = ()
    owner: Owner | None = None
    computed: Callable[[Mapping[str, Any], Config], dict[str, Any]] | None = None


NOTHING = Carries()


@dataclass(frozen=True)
class Owner:
    """Which project owns a row (api-compute.md §1.1 "Isolation"): its own ``project_id``
    column, or the ``project_id`` of the ``parent`` table's row that ``on`` names
    (deleted or not); a row whose parent is missing or has no project has none."""

    parent: str | None = None
    on: Callable[[], ColumnElement[bool]] | None = None
    # for owners no project_id names (a private flavor: the projects of its access
    # list): the rows a user context of the given project may reach
    condition: Callable[[Any], ColumnElement[bool]] | None = None


OWN_PROJECT = Owner()


@dataclass
class Config:
    """Options of the conductor that change results (models.md §1.2)."""

    instance_name_template: str = "instance-%08x"
    volume_name_template: str = "volume-%s"
    snapshot_name_template: str = "snapshot-%s"
    enable_new_services: bool = True
    strict_values: bool = False
    # "strict": a user context never reaches another project's rows (api-compute.md
    # §1.1 "Isolation"); "nova": 2012.2's scoping exactly
    isolation: Literal["strict", "nova"] = "strict"
    extra: dict[str, Any] = field(default_factory=dict)


CONFIG = Config()
