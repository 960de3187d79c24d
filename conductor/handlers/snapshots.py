"""Snapshots (api-network-quota-storage.md §5.4): rows plus ``name`` and ``volume_name``."""

from __future__ import annotations

import uuid as uuid_module
from typing import Any

from conductor.db.models import Snapshot
from conductor.db.query import authorize_project, equals
from conductor.db.session import Row, Session
from conductor.handlers import api, plain
from schemas import exceptions
from schemas.context import RequestContext

snapshots = Snapshot.__table__


@api
async def snapshot_get(session: Session, context: RequestContext, snapshot_id: Any, *,
                       lock: bool = False) -> Row:
    return await session.get(context, Snapshot, "id", snapshot_id,
                             lambda: exceptions.SnapshotNotFound(snapshot_id=snapshot_id),
                             project_only=True, lock=lock)


@api
async def snapshot_create(session: Session, context: RequestContext, values: Any) -> Row:
    if values is not None and not isinstance(values, dict):
        raise exceptions.InvalidInput(reason=f"values must be a dict, got "
                                      f"{type(values).__name__}")
    values = dict(values or {})
    if not values.get("id"):
        values["id"] = str(uuid_module.uuid4())
    row = await session.insert(Snapshot, values, echo=values, creator=context)
    await session.load(Snapshot, [row], ())  # the computed name and volume_name
    return row


snapshot_destroy = plain.destroy("snapshot_destroy", Snapshot)
snapshot_get_all = plain.rows("snapshot_get_all", Snapshot)


@api
async def snapshot_get_all_by_project(session: Session, context: RequestContext,
                                      project_id: Any) -> list[Row]:
    authorize_project(context, project_id)
    return await session.all(context, Snapshot, equals(snapshots.c.project_id, project_id))


@api
async def snapshot_get_all_for_volume(session: Session, context: RequestContext,
                                      volume_id: Any) -> list[Row]:
    return await session.all(context, Snapshot, equals(snapshots.c.volume_id, volume_id),
                             read_deleted="no", project_only=True)


@api
async def snapshot_update(session: Session, context: RequestContext, snapshot_id: Any,
                          values: Any) -> None:
    cols = session.check(Snapshot, values)
    snapshot = await snapshot_get(session, context, snapshot_id, lock=True)
    await session.update(Snapshot, snapshot, cols, checked=True)
