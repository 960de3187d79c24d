"""Quotas, quota classes and quota usages (api-network-quota-storage.md §4.1).

Reservations and the quota engine (``quota_reserve``, commit, rollback, expire) are in
:mod:`conductor.handlers.reservations`.  None of the creates checks for an existing row
with the same key (§4.1): single-row readers take the lowest id, the dict builders let the
highest id win.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select

from conductor.db.models import Quota, QuotaClass, QuotaUsage, Reservation
from conductor.db.query import (
    authorize_project,
    authorize_quota_class,
    equals,
    not_deleted,
)
from conductor.db.session import Row, Session
from conductor.handlers import api
from schemas import exceptions
from schemas.context import RequestContext

classes = QuotaClass.__table__


def project_rows(session: Session, context: RequestContext, model: Any,
                 project_id: Any) -> Select[Any]:
    """The project's live rows of ``model`` in id order (quotas, usages, reservations)."""
    table = model.__table__
    return (session.query(context, model, read_deleted="no")
            .where(equals(table.c.project_id, project_id)).order_by(table.c.id))


def _pair(session: Session, context: RequestContext, model: Any, key: str, key_value: Any,
          resource: Any) -> Select[Any]:
    table = model.__table__
    return (session.query(context, model, read_deleted="no")
            .where(equals(table.c[key], key_value), equals(table.c.resource, resource))
            .order_by(table.c.id).limit(1))


# --- quotas -------------------------------------------------------------------------------

async def _quota(session: Session, context: RequestContext, project_id: Any,
                 resource: Any) -> Row:
    return await session.one(_pair(session, context, Quota, "project_id", project_id, resource),
                             lambda: exceptions.ProjectQuotaNotFound(project_id=project_id))


@api
async def quota_create(session: Session, context: RequestContext, project_id: Any,
                       resource: Any, limit: Any) -> Row:
    return await session.insert(Quota, {"project_id": project_id, "resource": resource,
                                        "hard_limit": limit})


@api
async def quota_get(session: Session, context: RequestContext, project_id: Any,
                    resource: Any) -> Row:
    session.own_project(context, project_id)
    return await _quota(session, context, project_id, resource)


@api
async def quota_get_all_by_project(session: Session, context: RequestContext,
                                   project_id: Any) -> dict[str, Any]:
    authorize_project(context, project_id)
    result: dict[str, Any] = {"project_id": project_id}
    for row in await session.rows(project_rows(session, context, Quota, project_id)):
        result[row["resource"]] = row["hard_limit"]
    return result


@api
async def quota_update(session: Session, context: RequestContext, project_id: Any,
                       resource: Any, limit: Any) -> None:
    row = await _quota(session, context, project_id, resource)
    await session.update(Quota, row, {"hard_limit": limit})


@api
async def quota_destroy(session: Session, context: RequestContext, project_id: Any,
                        resource: Any) -> None:
    row = await _quota(session, context, project_id, resource)
    await session.soft_delete(Quota, row)


@api
async def quota_destroy_all_by_project(session: Session, context: RequestContext,
                                       project_id: Any) -> None:
    # Usages are locked before reservations, the order every quota call keeps (§4.3).
    await session.execute(project_rows(session, context, QuotaUsage, project_id).with_for_update())
    for model in (Quota, QuotaUsage, Reservation):
        table = model.__table__
        await session.soft_delete_where(model, not_deleted(table),
                                        equals(table.c.project_id, project_id), touch=True)


# --- quota classes ------------------------------------------------------------------------

async def _quota_class(session: Session, context: RequestContext, class_name: Any,
                       resource: Any) -> Row:
    return await session.one(_pair(session, context, QuotaClass, "class_name", class_name,
                                   resource),
                             lambda: exceptions.QuotaClassNotFound(class_name=class_name))


@api
async def quota_class_create(session: Session, context: RequestContext, class_name: Any,
                             resource: Any, limit: Any) -> Row:
    return await session.insert(QuotaClass, {"class_name": class_name, "resource": resource,
                                             "hard_limit": limit})


@api
async def quota_class_get(session: Session, context: RequestContext, class_name: Any,
                          resource: Any) -> Row:
    return await _quota_class(session, context, class_name, resource)


@api
async def quota_class_get_all_by_name(session: Session, context: RequestContext,
                                      class_name: Any) -> dict[str, Any]:
    authorize_quota_class(context, class_name)
    rows = await session.all(context, QuotaClass, equals(classes.c.class_name, class_name),
                             read_deleted="no")
    result: dict[str, Any] = {"class_name": class_name}
    for row in rows:
        result[row["resource"]] = row["hard_limit"]
    return result


@api
async def quota_class_update(session: Session, context: RequestContext, class_name: Any,
                             resource: Any, limit: Any) -> None:
    row = await _quota_class(session, context, class_name, resource)
    await session.update(QuotaClass, row, {"hard_limit": limit})


@api
async def quota_class_destroy(session: Session, context: RequestContext, class_name: Any,
                              resource: Any) -> None:
    row = await _quota_class(session, context, class_name, resource)
    await session.soft_delete(QuotaClass, row)


@api
async def quota_class_destroy_all_by_name(session: Session, context: RequestContext,
                                          class_name: Any) -> None:
    await session.soft_delete_where(QuotaClass, not_deleted(classes),
                                    equals(classes.c.class_name, class_name), touch=True)


# --- quota usages -------------------------------------------------------------------------

async def _usage(session: Session, context: RequestContext, project_id: Any,
                 resource: Any) -> Row:
    return await session.one(_pair(session, context, QuotaUsage, "project_id", project_id,
                                   resource),
                             lambda: exceptions.QuotaUsageNotFound(project_id=project_id))


async def with_total(session: Session, row: Row) -> Row:
    """The usage row with its computed ``total`` (models.md §1.2), after a write."""
    await session.load(QuotaUsage, [row])
    return row


@api
async def quota_usage_create(session: Session, context: RequestContext, project_id: Any,
                             resource: Any, in_use: Any, reserved: Any,
                             until_refresh: Any) -> Row:
    row = await session.insert(QuotaUsage, {
        "project_id": project_id, "resource": resource, "in_use": in_use,
        "reserved": reserved, "until_refresh": until_refresh})
    return await with_total(session, row)


@api
async def quota_usage_get(session: Session, context: RequestContext, project_id: Any,
                          resource: Any) -> Row:
    session.own_project(context, project_id)
    return await _usage(session, context, project_id, resource)


@api
async def quota_usage_get_all_by_project(session: Session, context: RequestContext,
                                         project_id: Any) -> dict[str, Any]:
    authorize_project(context, project_id)
    result: dict[str, Any] = {"project_id": project_id}
    for row in await session.rows(project_rows(session, context, QuotaUsage, project_id)):
        result[row["resource"]] = {"in_use": row["in_use"], "reserved": row["reserved"]}
    return result


@api
async def quota_usage_update(session: Session, context: RequestContext, project_id: Any,
                             resource: Any, in_use: Any, reserved: Any,
                             until_refresh: Any) -> None:
    row = await _usage(session, context, project_id, resource)
    await session.update(QuotaUsage, row, {"in_use": in_use, "reserved": reserved,
                                           "until_refresh": until_refresh})


@api
async def quota_usage_destroy(session: Session, context: RequestContext, project_id: Any,
                              resource: Any) -> None:
    row = await _usage(session, context, project_id, resource)
    await session.soft_delete(QuotaUsage, row)
