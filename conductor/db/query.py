"""Nova's query conventions, written once: access checks, read_deleted, project scoping.

Handlers build their statements from :func:`model_query` and never re-type these rules.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, String, Table, false, or_, select, true
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from conductor.db.base import Base, Config
from conductor.db.models import carries
from conductor.db.values import NO_MATCH, lookup_value
from schemas import exceptions
from schemas.context import RequestContext

ProjectOnly = bool | Literal["allow_none"]


def is_user_context(context: RequestContext) -> bool:
    """A non-admin context acting for a user and a project (api-compute.md §1.1)."""
    return bool(not context.is_admin and context.user_id and context.project_id)


def require_context(context: RequestContext) -> None:
    if not context.is_admin and not is_user_context(context):
        raise exceptions.NotAuthorized()


def require_admin(context: RequestContext) -> None:
    if not context.is_admin:
        raise exceptions.AdminRequired()


def authorize_project(context: RequestContext, project_id: Any) -> None:
    """The project check: a user context may only name its own project, or touch a row
    its own project owns (the owner checks of api-network-quota-storage.md §1.2)."""
    if is_user_context(context) and context.project_id != project_id:
        raise exceptions.NotAuthorized()


def authorize_user(context: RequestContext, user_id: Any) -> None:
    if is_user_context(context) and context.user_id != user_id:
        raise exceptions.NotAuthorized()


def authorize_quota_class(context: RequestContext, class_name: Any) -> None:
    if is_user_context(context) and (not context.quota_class
                                     or context.quota_class != class_name):
        raise exceptions.NotAuthorized()


def table_of(model: Any) -> Table:
    return model if isinstance(model, Table) else model.__table__


def deleted_filter(table: Table, read_deleted: str) -> ColumnElement[bool] | None:
    if read_deleted == "no":
        return table.c.deleted == false()
    if read_deleted == "only":
        return table.c.deleted == true()
    if read_deleted == "yes":
        return None
    raise ValueError(f"unrecognised read_deleted value {read_deleted!r}")


def not_deleted(table: Any) -> ColumnElement[bool]:
    """Live rows only: read_deleted ``'no'`` forced (api-compute.md §1.2 "never")."""
    return table_of(table).c.deleted == false()


def scoping(context: RequestContext, project_only: ProjectOnly) -> ProjectOnly:
    """The project scoping a query gets for ``context``: only user contexts are ever
    restricted (api-compute.md §1.1)."""
    return project_only if project_only and is_user_context(context) else False


def project_condition(table: Table, scope: ProjectOnly, project: Any) -> Any:
    """Rows of ``project`` (a value or a bind parameter) under ``scope`` from
    :func:`scoping`; ``"allow_none"`` also admits rows without a project; None when
    the scope restricts nothing."""
    if not scope:
        return None
    mine = table.c.project_id == project
    return or_(mine, table.c.project_id.is_(None)) if scope == "allow_none" else mine


def isolation_condition(table: Table, project: Any) -> ColumnElement[bool] | None:
    """The rows of ``table`` a user context of ``project`` (a value or a bind parameter)
    may reach under strict isolation (api-compute.md §1.1 "Isolation"): rows of its
    project and rows of no project; a row owned through a parent takes the parent's
    project, deleted parents included, and has none when the parent is missing.  None
    for tables no project owns (operators' configuration)."""
    owner = carries(table).owner
    if owner is None:
        return None
    if owner.condition is not None:
        return owner.condition(project)
    if owner.parent is None:
        return or_(table.c.project_id == project, table.c.project_id.is_(None))
    assert owner.on is not None
    parent = Base.metadata.tables[owner.parent]
    foreign = (select(parent.c.project_id).where(owner.on(), parent.c.project_id.is_not(None),
                                                 parent.c.project_id != project)
               .correlate(table))
    return ~foreign.exists()


def isolated(context: RequestContext, config: Config) -> bool:
    """Whether ``context``'s reads are isolated to its project: user contexts under the
    default ``strict`` mode (``--isolation nova`` restores 2012.2's scoping)."""
    return config.isolation == "strict" and is_user_context(context)


def model_query(context: RequestContext, model: Any, *, read_deleted: str | None = None,
                project_only: ProjectOnly = False) -> Select[Any]:
    """``SELECT table.*`` with the context's (or the forced) read_deleted, and scoping.

    ``project_only`` restricts user contexts to their project's rows (``"allow_none"``
    also admits rows without a project); admin contexts are never restricted.
    """
    table = table_of(model)
    stmt = select(table)
    cond = deleted_filter(table, read_deleted or context.read_deleted)
    if cond is not None:
        stmt = stmt.where(cond)
    scope = project_condition(table, scoping(context, project_only), context.project_id)
    if scope is not None:
        stmt = stmt.where(scope)
    return stmt


def equals(column: Any, value: Any) -> ColumnElement[bool]:
    """``filter_by(column=value)``: None matches NULL, and a value of a type the column
    cannot hold matches nothing (as on Nova's SQLite), never a driver error."""
    if value is None:
        return column.is_(None)
    converted = lookup_value(column, value)
    return false() if converted is NO_MATCH else column == converted


def key_equals(column: Any, value: Any) -> ColumnElement[bool]:
    """:func:`equals` for a key argument (an id, a uuid): None names no row either, where
    :func:`equals` matches NULL."""
    converted = NO_MATCH if value is None else lookup_value(column, value)
    return false() if converted is NO_MATCH or converted is None else column == converted


def one_of(column: Any, values: Any) -> ColumnElement[bool]:
    """``column IN values`` with the same conversions as :func:`equals`; None in the
    values matches NULL."""
    items = list(values)
    wanted = [v for v in (lookup_value(column, x) for x in items if x is not None)
              if v is not NO_MATCH]
    conds = [column.in_(wanted)] if wanted else []
    if any(x is None for x in items):
        conds.append(column.is_(None))
    return or_(false(), *conds)


def is_uuid_like(value: Any) -> bool:
    """Anything Python's ``uuid.UUID()`` accepts (api-compute.md §3.6)."""
    try:
        uuid.UUID(str(value)) if isinstance(value, str) else uuid.UUID(value)
        return True
    except (TypeError, ValueError, AttributeError):
        return False


def require_uuid(value: Any) -> None:
    """``InvalidUUID`` with the value as the whole message, as Nova raises it."""
    if not isinstance(value, str) or not is_uuid_like(value):
        raise exceptions.InvalidUUID(str(value))


class datetime_text(FunctionElement[str]):  # noqa: N801 - used like a SQL function
    """A datetime column as ``str(datetime)`` spells it (microseconds always shown; the
    caller trims ``.000000``): PostgreSQL's text form trims trailing zeros, so it is
    formatted there; SQLite stores the text already."""

    type = String()
    inherit_cache = True


@compiles(datetime_text)
def _datetime_text(element: datetime_text, compiler: Any, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)  # type: ignore[no-any-return]


@compiles(datetime_text, "postgresql")
def _datetime_text_postgresql(element: datetime_text, compiler: Any, **kw: Any) -> str:
    column = compiler.process(element.clauses, **kw)
    return f"to_char({column}, 'YYYY-MM-DD HH24:MI:SS.US')"

