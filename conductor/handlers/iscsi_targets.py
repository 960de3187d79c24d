"""iSCSI targets (api-network-quota-storage.md §3.7)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from conductor.db.models import IscsiTarget
from conductor.db.query import equals, not_deleted
from conductor.db.session import Row, Session
from conductor.handlers import api
from schemas import exceptions
from schemas.context import RequestContext

targets = IscsiTarget.__table__


@api
async def iscsi_target_count_by_host(session: Session, context: RequestContext,
                                     host: Any) -> int:
    stmt = (session.query(context, IscsiTarget).where(equals(targets.c.host, host))
            .with_only_columns(func.count(), maintain_column_froms=True))
    return int(await session.scalar(stmt))


@api
async def iscsi_target_create_safe(session: Session, context: RequestContext,
                                   values: Any) -> Row | None:
    return await session.insert_or_skip(IscsiTarget, values, echo=values)


@api
async def volume_allocate_iscsi_target(session: Session, context: RequestContext,
                                       volume_id: Any, host: Any) -> Any:
    target = await session.pick(
        select(targets).where(not_deleted(targets), targets.c.volume_id.is_(None),
                              equals(targets.c.host, host))
        .order_by(targets.c.id), exceptions.NoMoreTargets)
    await session.update(IscsiTarget, target, {"volume_id": volume_id})
    return target["target_num"]


@api
async def volume_get_iscsi_target_num(session: Session, context: RequestContext,
                                      volume_id: Any) -> Any:
    target_num = await session.execute(
        select(targets.c.target_num).where(equals(targets.c.volume_id, volume_id))
        .order_by(targets.c.id).limit(1))
    found = target_num.first()
    if found is None:
        raise exceptions.ISCSITargetNotFoundForVolume(volume_id=volume_id)
    return found.target_num
