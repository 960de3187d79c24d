"""EC2 volume and snapshot id mappings (api-compute.md §3.12).

As for instances (``ec2.py``), the mapping row's ``id`` is the EC2 integer id; unlike
instances, a caller may force it (models.md §3: ``session.insert`` then moves the
PostgreSQL sequence past it).  ``volume_get_by_ec2_id`` is the storage page's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from conductor.db.models import Snapshot, SnapshotIdMapping, Volume, VolumeIdMapping
from conductor.db.query import equals
from conductor.db.session import Row, Session
from conductor.handlers import api
from schemas import exceptions
from schemas.context import RequestContext

Mapping = type[VolumeIdMapping] | type[SnapshotIdMapping]
NotFound = Callable[[Any], exceptions.NotFound]


def _volume_not_found(value: Any) -> exceptions.NotFound:
    return exceptions.VolumeNotFound(volume_id=value)


def _snapshot_not_found(value: Any) -> exceptions.NotFound:
    return exceptions.SnapshotNotFound(snapshot_id=value)


async def _create(session: Session, model: Mapping, uuid: Any, forced_id: Any) -> Row:
    values = {"uuid": uuid} if forced_id is None else {"uuid": uuid, "id": forced_id}
    # the result shows the caller's values as given (§1.5), as Nova's in-memory row does
    return await session.insert(model, values, echo=values)


async def _ec2_id(session: Session, context: RequestContext, model: Mapping, uuid: Any,
                  not_found: NotFound) -> int:
    # several rows may carry one uuid: the first (lowest id) is the answer
    row = await session.get(context, model, "uuid", uuid, lambda: not_found(uuid))
    return int(row["id"])


async def _uuid(session: Session, context: RequestContext, model: Mapping, ec2_id: Any,
                not_found: NotFound) -> str:
    row = await session.get(context, model, "id", ec2_id, lambda: not_found(ec2_id))
    return str(row["uuid"])


@api
async def ec2_volume_create(session: Session, context: RequestContext, volume_id: Any,
                            forced_id: Any = None) -> Row:
    # no mapping for another project's volume: it is missing to this caller
    if await session.foreign(context, Volume, equals(Volume.__table__.c.id, volume_id)):
        raise _volume_not_found(volume_id)
    return await _create(session, VolumeIdMapping, volume_id, forced_id)


@api
async def get_ec2_volume_id_by_uuid(session: Session, context: RequestContext,
                                    volume_id: Any) -> int:
    return await _ec2_id(session, context, VolumeIdMapping, volume_id, _volume_not_found)


@api
async def get_volume_uuid_by_ec2_id(session: Session, context: RequestContext,
                                    ec2_id: Any) -> str:
    return await _uuid(session, context, VolumeIdMapping, ec2_id, _volume_not_found)


@api
async def ec2_snapshot_create(session: Session, context: RequestContext, snapshot_id: Any,
                              forced_id: Any = None) -> Row:
    if await session.foreign(context, Snapshot, equals(Snapshot.__table__.c.id, snapshot_id)):
        raise _snapshot_not_found(snapshot_id)
    return await _create(session, SnapshotIdMapping, snapshot_id, forced_id)


@api
async def get_ec2_snapshot_id_by_uuid(session: Session, context: RequestContext,
                                      snapshot_id: Any) -> int:
    return await _ec2_id(session, context, SnapshotIdMapping, snapshot_id,
                         _snapshot_not_found)


@api
async def get_snapshot_uuid_by_ec2_id(session: Session, context: RequestContext,
                                      ec2_id: Any) -> str:
    return await _uuid(session, context, SnapshotIdMapping, ec2_id, _snapshot_not_found)
