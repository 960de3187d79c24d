"""Volumes and their metadata (api-network-quota-storage.md §5.1, §5.2).

``volume_allocate_iscsi_target`` belongs to the iSCSI targets module.
"""

from __future__ import annotations

import uuid as uuid_module
from typing import Any

from sqlalchemy import func, or_, select, update

from conductor.db import keyvalue
from conductor.db.base import utcnow
from conductor.db.models import IscsiTarget, Volume, VolumeMetadata
from conductor.db.query import authorize_project, equals, not_deleted, require_uuid
from conductor.db.session import Row, Session
from conductor.db.values import datetime_arg
from conductor.handlers import api, plain
from schemas import exceptions
from schemas.context import RequestContext

volumes = Volume.__table__
volume_meta = VolumeMetadata.__table__
targets = IscsiTarget.__table__

# What every volume result carries nested (§5.1).
JOINS = ("volume_metadata", "volume_type")


def _dict_arg(value: Any, what: str, *, none_ok: bool) -> dict[Any, Any]:
    if value is None and none_ok:
        return {}
    if not isinstance(value, dict):
        raise exceptions.InvalidInput(reason=f"{what} must be a dict, got "
                                      f"{type(value).__name__}")
    return dict(value)


@api
async def volume_get(session: Session, context: RequestContext, volume_id: Any, *,
                     joins: tuple[str, ...] = JOINS, lock: bool = False) -> Row:
    """Context read_deleted, strict project scope for user contexts; ``lock`` takes the
    row lock."""
    return await session.get(context, Volume, "id", volume_id,
                             lambda: exceptions.VolumeNotFound(volume_id=volume_id), joins,
                             project_only=True, lock=lock)


async def _replace_metadata(session: Session, context: RequestContext, volume: Row,
                            metadata: Any, delete: Any) -> None:
    given = _dict_arg(metadata, "metadata", none_ok=False)
    # Convert first, so a value the column refuses writes nothing.
    wanted = [session.check(VolumeMetadata, {"key": k, "value": v, "volume_id": volume["id"]})
              for k, v in given.items()]
    items = await session.all(context, VolumeMetadata, volume_meta.c.volume_id == volume["id"],
                              read_deleted="no")
    await keyvalue.merge(session, VolumeMetadata.__table__, items, wanted, bool(delete))


# --- volumes ------------------------------------------------------------------------

@api
async def volume_create(session: Session, context: RequestContext, values: Any) -> Row:
    values = _dict_arg(values, "values", none_ok=True)
    if not values.get("id"):
        values["id"] = str(uuid_module.uuid4())
    cols = session.check(Volume, values, allowed_extra=("metadata",))
    meta = [session.check(VolumeMetadata, {"key": k, "value": v, "volume_id": cols["id"]})
            for k, v in _dict_arg(values.get("metadata"), "volumes.metadata",
                                  none_ok=True).items()]
    await session.insert(Volume, cols, checked=True, creator=context)
    for item in meta:
        await session.insert(VolumeMetadata, item, checked=True)
    # Read back as volume_get: a row the caller may not see raises and rolls back (§5.1).
    return await volume_get(session, context, cols["id"])


volume_get_all = plain.rows("volume_get_all", Volume, joins=JOINS)
volume_get_all_by_host = plain.rows("volume_get_all_by_host", Volume, "host", joins=JOINS)
volume_get_all_by_instance_uuid = plain.rows("volume_get_all_by_instance_uuid", Volume,
                                             "instance_uuid", joins=JOINS, read_deleted="no")


@api
async def volume_get_all_by_project(session: Session, context: RequestContext,
                                    project_id: Any) -> list[Row]:
    authorize_project(context, project_id)
    return await session.all(context, Volume, equals(volumes.c.project_id, project_id),
                             joins=JOINS)


@api
async def volume_get_by_ec2_id(session: Session, context: RequestContext,
                               ec2_id: Any) -> Row:
    # Declared in nova/db/api.py 2012.2 without an implementation (§7 item 7).
    raise NotImplementedError("volume_get_by_ec2_id has no implementation in Nova 2012.2")


@api
async def volume_update(session: Session, context: RequestContext, volume_id: Any,
                        values: Any) -> Row:
    values = _dict_arg(values, "values", none_ok=True)
    metadata = values.pop("metadata", None)
    cols = session.check(Volume, values)
    volume = await volume_get(session, context, volume_id, joins=(), lock=True)
    if metadata is not None:
        await _replace_metadata(session, context, volume, metadata, delete=True)
    await session.update(Volume, volume, cols, checked=True, echo=values)
    # the fresh metadata list (allowed by §5.1) and the type the row now names
    await session.load(Volume, [volume], JOINS)
    return volume


@api
async def volume_destroy(session: Session, context: RequestContext, volume_id: Any) -> Row:
    volume = await volume_get(session, context, volume_id)
    await session.soft_delete_where(Volume, volumes.c.id == volume["id"])
    # the target goes back to the pool
    await session.execute(update(targets).where(targets.c.volume_id == volume["id"])
                          .values(volume_id=None))
    # every metadata row, deleted ones included, as Nova's unfiltered bulk update does
    await session.soft_delete_where(VolumeMetadata, volume_meta.c.volume_id == volume["id"])
    fresh = (await session.execute(select(volumes.c.deleted, volumes.c.deleted_at)
                                   .where(volumes.c.id == volume["id"]))).one()
    volume["deleted"], volume["deleted_at"] = fresh.deleted, fresh.deleted_at
    return volume


@api
async def volume_attached(session: Session, context: RequestContext, volume_id: Any,
                          instance_id: Any, mountpoint: Any) -> None:
    # ``instance_id`` carries the instance uuid (Nova's parameter name).
    require_uuid(instance_id)
    volume = await volume_get(session, context, volume_id, joins=(), lock=True)
    await session.update(Volume, volume, {
        "status": "in-use", "mountpoint": mountpoint, "attach_status": "attached",
        "instance_uuid": instance_id, "attach_time": utcnow()})


@api
async def volume_detached(session: Session, context: RequestContext, volume_id: Any) -> None:
    volume = await volume_get(session, context, volume_id, joins=(), lock=True)
    await session.update(Volume, volume, {
        "status": "available", "mountpoint": None, "attach_status": "detached",
        "instance_uuid": None}, checked=True)


@api
async def volume_data_get_for_project(session: Session, context: RequestContext,
                                      project_id: Any) -> tuple[int, int]:
    result = await session.execute(
        select(func.count(volumes.c.id), func.sum(volumes.c.size))
        .where(not_deleted(volumes), equals(volumes.c.project_id, project_id)))
    count, gigabytes = result.one()
    return (int(count or 0), int(gigabytes or 0))


@api
async def volume_get_active_by_window(session: Session, context: RequestContext, begin: Any,
                                      end: Any = None, project_id: Any = None) -> list[Row]:
    if project_id:
        session.own_project(context, project_id)
    start = datetime_arg("begin", volumes.c.deleted_at, begin)
    stop = datetime_arg("end", volumes.c.created_at, end)
    deleted_at = volumes.c.deleted_at
    # No deleted filter and no project scoping (§5.1); ``> NULL`` holds for no row.
    stmt = select(volumes).where(deleted_at.is_(None) if start is None
                                 else or_(deleted_at.is_(None), deleted_at > start))
    if stop is not None:
        stmt = stmt.where(volumes.c.created_at < stop)
    if project_id:
        stmt = stmt.where(equals(volumes.c.project_id, project_id))
    return await session.rows(stmt.order_by(volumes.c.id))


# --- metadata -----------------------------------------------------------------------

@api
async def volume_metadata_get(session: Session, context: RequestContext,
                              volume_id: Any) -> dict[Any, Any]:
    volume = await volume_get(session, context, volume_id, joins=())
    return await keyvalue.items_dict(session, context, VolumeMetadata,
                                     volume_meta.c.volume_id == volume["id"], read_deleted="no")


@api
async def volume_metadata_delete(session: Session, context: RequestContext, volume_id: Any,
                                 key: Any) -> None:
    volume = await volume_get(session, context, volume_id, joins=(), lock=True)
    await session.soft_delete_where(VolumeMetadata, volume_meta.c.volume_id == volume["id"],
                                    not_deleted(volume_meta),
                                    equals(volume_meta.c.key, key))


@api
async def volume_metadata_update(session: Session, context: RequestContext, volume_id: Any,
                                 metadata: Any, delete: Any) -> None:
    # The volume's row lock serialises metadata writers, so that two updates adding the
    # same key cannot both insert it.
    volume = await volume_get(session, context, volume_id, joins=(), lock=True)
    await _replace_metadata(session, context, volume, metadata, delete)
