"""Bandwidth usage (api-compute.md §3.16): one row per ``(start_period, uuid, mac)``."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update

from conductor.db.base import utcnow
from conductor.db.models import BandwidthUsage, Instance
from conductor.db.query import equals, one_of
from conductor.db.session import Row, Session
from conductor.handlers import api
from schemas import exceptions
from schemas.context import RequestContext

usage = BandwidthUsage.__table__

@api
async def bw_usage_get_by_uuids(session: Session, context: RequestContext, uuids: Any,
                                start_period: Any) -> list[Row]:
    if not isinstance(uuids, (list, tuple, set, frozenset)):
        raise exceptions.InvalidInput(reason=f"bw_usage_get_by_uuids: uuids must be a list, "
                                      f"got {type(uuids).__name__}")
    return await session.all(context, BandwidthUsage, one_of(usage.c.uuid, uuids),
                             equals(usage.c.start_period, start_period), read_deleted="yes")


@api
async def bw_usage_update(session: Session, context: RequestContext, uuid: Any, mac: Any,
                          start_period: Any, bw_in: Any, bw_out: Any,
                          last_refreshed: Any = None) -> None:
    # another project's instance is missing to this caller: its usage is not written
    if await session.foreign(context, Instance, equals(Instance.__table__.c.uuid, uuid)):
        raise exceptions.InstanceNotFound(instance_id=uuid)
    cols = session.check(BandwidthUsage, {
        "uuid": uuid, "mac": mac, "start_period": start_period, "bw_in": bw_in,
        "bw_out": bw_out,
        "last_refreshed": utcnow() if last_refreshed is None else last_refreshed})
    keys = (usage.c.start_period == cols["start_period"], usage.c.uuid == cols["uuid"],
            usage.c.mac == cols["mac"])
    # Every matching row, deleted ones included; updated_at moves with the UPDATE.
    refresh = update(usage).where(*keys).values(
        bw_in=cols["bw_in"], bw_out=cols["bw_out"], last_refreshed=cols["last_refreshed"])
    if (await session.execute(refresh)).rowcount:
        return
    # A new key: without the lock, two first writers would both insert.  The second one
    # waits here and its repeated UPDATE sees the first one's committed row.
    await session.lock("bw_usage", cols["start_period"].isoformat(), cols["uuid"],
                       cols["mac"])
    if (await session.execute(refresh)).rowcount:
        return
    await session.insert(BandwidthUsage, cols, checked=True)
