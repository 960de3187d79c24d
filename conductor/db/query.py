"""Nova's query conventions, written once: access checks, read_deleted, project scoping.

Handlers build their statements from :func:`model_query` and never re-type these rules.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, Table, and_, false, or_, select, true

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
    """The project check: a user context may only name its own project."""
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
    if project_only and is_user_context(context):
        if project_only == "allow_none":
            stmt = stmt.where(or_(table.c.project_id == context.project_id,
                                  table.c.project_id.is_(None)))
        else:
            stmt = stmt.where(table.c.project_id == context.project_id)
    return stmt


def equals(column: Any, value: Any) -> ColumnElement[bool]:
    """``filter_by(column=value)``: None matches NULL, and a value of a type the column
    cannot hold matches nothing (as on Nova's SQLite), never a driver error."""
    if value is None:
        return column.is_(None)
    converted = lookup_value(column, value)
    return false() if converted is NO_MATCH else column == converted


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


def all_of(*conditions: ColumnElement[bool]) -> ColumnElement[bool]:
    return and_(true(), *conditions)


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
