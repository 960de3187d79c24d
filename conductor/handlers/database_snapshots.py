"""Database snapshots (database-snapshots.md): a top-level resource with lifecycle events.

Unlike Nova's families, values are checked strictly: an unknown column, a value outside
its rules or a key that may not change is ``InvalidInput`` naming the column, before
anything is written.  Each change records its event (created / modified / destroyed) in
the outbox of the same transaction.
"""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import ColumnElement, and_, or_

from conductor.db import events
from conductor.db.models import DatabaseSnapshot
from conductor.db.query import key_equals, one_of
from conductor.db.session import Row, Session
from conductor.db.values import NO_MATCH, lookup_int, lookup_value
from conductor.handlers import api
from schemas import exceptions
from schemas.context import RequestContext

snapshots = DatabaseSnapshot.__table__

RESOURCE_TYPE = "databasesnapshot"
PROVIDER_KEY = ("organization_service_id", "region_name", "snapshot_id")
IMMUTABLE = ("id", "resource_id", *PROVIDER_KEY)
_BASE = ("created_at", "updated_at", "deleted_at", "deleted")
_RANGES = {"port": (1, 65535), "size": (0, None), "progress": (0, 100)}
_TYPES = ("manual", "automatic")


def _invalid(column: str, reason: str) -> exceptions.InvalidInput:
    return exceptions.InvalidInput(reason=f"database_snapshots.{column}: {reason}")


def _check(session: Session, values: Any, *, creating: bool) -> Row:
    cols = session.check(DatabaseSnapshot, values, strict=True)
    for key in ("id", "resource_id"):
        if creating and key in cols:
            raise _invalid(key, "is chosen by the conductor and may not be given")
    for key in _BASE:
        if key in cols:
            raise _invalid(key, "is kept by the conductor and may not be given")
    for key, (low, high) in _RANGES.items():
        value = cols.get(key)
        if value is not None and (value < low or (high is not None and value > high)):
            bounds = f"{low}-{high}" if high is not None else f">= {low}"
            raise _invalid(key, f"must be {bounds}, got {value}")
    if "snapshot_type" in cols and cols["snapshot_type"] not in _TYPES:
        raise _invalid("snapshot_type", f"must be one of {', '.join(_TYPES)}, "
                       f"got {cols['snapshot_type']!r}")
    if creating:
        for key in PROVIDER_KEY:
            if cols.get(key) is None:
                raise _invalid(key, "is required")
    return cols


@api
async def database_snapshot_get(session: Session, context: RequestContext, resource_id: Any,
                                *, live: bool = False) -> Row:
    return await session.get(
        context, DatabaseSnapshot, "resource_id", resource_id,
        lambda: exceptions.DatabaseSnapshotNotFound(resource_id=resource_id),
        read_deleted="no" if live else None)


async def _emit(session: Session, context: RequestContext, event: str, row: Row,
                **extra: Any) -> None:
    await events.record(session, f"database_snapshot.{event}", RESOURCE_TYPE,
                        row["resource_id"], dict(row, **extra), context.request_id)


def _exists(cols: Row) -> exceptions.DatabaseSnapshotExists:
    return exceptions.DatabaseSnapshotExists(**{k: cols[k] for k in PROVIDER_KEY})


@api
async def database_snapshot_create(session: Session, context: RequestContext,
                                   values: Any) -> Row:
    cols = _check(session, values, creating=True)
    clash = await session.row(session.query(context, DatabaseSnapshot, read_deleted="no")
                              .where(*(snapshots.c[k] == cols[k] for k in PROVIDER_KEY)))
    if clash is not None:
        raise _exists(cols)
    cols["resource_id"] = f"dbsnap-{secrets.token_hex(8)}"
    # A concurrent create of the same provider snapshot loses on the partial unique
    # index of live provider keys.
    row = await session.insert_or_skip(DatabaseSnapshot, cols)
    if row is None:
        raise _exists(cols)
    await _emit(session, context, "created", row)
    return row


@api
async def database_snapshot_get_by_provider_id(session: Session, context: RequestContext,
                                               organization_service_id: Any,
                                               region_name: Any, snapshot_id: Any) -> Row:
    given = {"organization_service_id": organization_service_id,
             "region_name": region_name, "snapshot_id": snapshot_id}
    return await session.first(
        context, DatabaseSnapshot, *(key_equals(snapshots.c[k], v) for k, v in given.items()),
        read_deleted="no", missing=lambda: exceptions.DatabaseSnapshotNotFound(
            resource_id=f"{organization_service_id}/{region_name}/{snapshot_id}"))


def _filters(filters: Any) -> list[ColumnElement[bool]]:
    if filters is not None and not isinstance(filters, dict):
        raise exceptions.InvalidInput(reason="filters must be a dict")
    return [_filter(key, value) for key, value in (filters or {}).items()]


def _filter(key: Any, value: Any) -> ColumnElement[bool]:
    if key in ("create_time_after", "create_time_before"):
        moment = _moment(key, value)
        bound: ColumnElement[bool] = (snapshots.c.create_time >= moment
                                      if key == "create_time_after"
                                      else snapshots.c.create_time < moment)
        return bound
    column = snapshots.c.get(key) if isinstance(key, str) else None
    if column is None:
        raise exceptions.InvalidInput(reason=f"database_snapshots has no column {key!r} "
                                      f"to filter on")
    return one_of(column, value if isinstance(value, (list, tuple, set, frozenset)) else [value])


def _moment(key: str, value: Any) -> Any:
    moment = lookup_value(snapshots.c.create_time, value)
    if moment is NO_MATCH or moment is None:
        raise exceptions.InvalidInput(reason=f"{key} must be a datetime, got {value!r:.60}")
    return moment


def _order(sort_key: Any, sort_dir: Any) -> tuple[Any, bool]:
    column = snapshots.c.get(sort_key) if isinstance(sort_key, str) else None
    if column is None:
        raise exceptions.InvalidInput(reason=f"database_snapshots has no column "
                                      f"{sort_key!r:.60} to sort on")
    if sort_dir not in ("asc", "desc"):
        raise exceptions.InvalidInput(reason=f"sort_dir must be 'asc' or 'desc', "
                                      f"not {sort_dir!r:.60}")
    return column, sort_dir == "desc"


def _after(column: Any, desc: bool, marker: Row) -> ColumnElement[bool]:
    """Rows strictly after ``marker`` in (value NULLS LAST, id), both in one direction."""
    ids = snapshots.c.id
    later_id = ids < marker["id"] if desc else ids > marker["id"]
    value = marker[column.name]
    if value is None:
        return and_(column.is_(None), later_id)
    later_value = column < value if desc else column > value
    return or_(column.is_(None), later_value, and_(column == value, later_id))


@api
async def database_snapshot_get_all(session: Session, context: RequestContext,
                                    filters: Any = None, sort_key: Any = "create_time",
                                    sort_dir: Any = "desc", limit: Any = None,
                                    marker: Any = None) -> list[Row]:
    column, desc = _order(sort_key, sort_dir)
    stmt = session.query(context, DatabaseSnapshot).where(*_filters(filters))
    if marker is not None:
        try:
            found = await database_snapshot_get(session, context, marker)
        except exceptions.DatabaseSnapshotNotFound:
            raise exceptions.MarkerNotFound(str(marker)) from None
        stmt = stmt.where(_after(column, desc, found))
    direction = (lambda c: c.desc()) if desc else (lambda c: c.asc())
    stmt = stmt.order_by(column.is_(None), direction(column), direction(snapshots.c.id))
    if limit is not None:
        count = lookup_int(limit)
        if count is None or count < 0:
            raise exceptions.InvalidInput(reason=f"limit must be a non-negative integer, "
                                          f"not {limit!r:.60}")
        stmt = stmt.limit(count)
    return await session.rows(stmt)


@api
async def database_snapshot_get_all_by_instance(session: Session, context: RequestContext,
                                                instance_resource_id: Any) -> list[Row]:
    create_time = snapshots.c.create_time
    return await session.rows(
        session.query(context, DatabaseSnapshot)
        .where(key_equals(snapshots.c.instance_resource_id, instance_resource_id))
        .order_by(create_time.is_(None), create_time.desc(), snapshots.c.id.desc()))


@api
async def database_snapshot_update(session: Session, context: RequestContext,
                                   resource_id: Any, values: Any) -> Row:
    cols = _check(session, values, creating=False)
    row = await database_snapshot_get(session, context, resource_id, live=True)
    for key in IMMUTABLE:
        if key in cols and cols[key] != row[key]:
            raise _invalid(key, "may not change")
    changes = {k: [row[k], v] for k, v in cols.items() if row[k] != v}
    if changes:
        await session.update(DatabaseSnapshot, row, cols, checked=True)
        await _emit(session, context, "modified", row, changes=changes)
    return row


@api
async def database_snapshot_destroy(session: Session, context: RequestContext,
                                    resource_id: Any) -> None:
    row = await database_snapshot_get(session, context, resource_id, live=True)
    await session.soft_delete(DatabaseSnapshot, row)
    await _emit(session, context, "destroyed", row)


@api
async def database_snapshot_creation_timestamp(session: Session, context: RequestContext,
                                               resource_id: Any) -> Any:
    return (await database_snapshot_get(session, context, resource_id))["create_time"]

