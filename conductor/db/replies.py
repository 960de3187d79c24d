"""Exactly-once bookkeeping: stored replies of write calls, and redelivery counts."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from conductor.db.base import utcnow
from conductor.db.rpc_tables import RpcDelivery, RpcReply

_replies = RpcReply.__table__
_deliveries = RpcDelivery.__table__

async def stored_reply(conn: AsyncConnection, message_id: str) -> bytes | None:
    result = await conn.execute(select(_replies.c.reply)
                                .where(_replies.c.message_id == message_id))
    return result.scalar()


async def record_reply(conn: AsyncConnection, message_id: str, method: str,
                       reply: bytes) -> None:
    """In the call's own transaction: a duplicate id raises IntegrityError there."""
    await conn.execute(insert(_replies).values(message_id=message_id, method=method,
                                               reply=reply, created_at=utcnow()))


async def count_delivery(engine: AsyncEngine, message_id: str, method: str) -> int:
    """Count one more delivery of a redelivered message (committed at once); the total."""
    async with engine.begin() as conn:
        result = await conn.execute(
            update(_deliveries).where(_deliveries.c.message_id == message_id)
            .values(deliveries=_deliveries.c.deliveries + 1)
            .returning(_deliveries.c.deliveries))
        count = result.scalar()
        if count is None:
            # The first delivery was not counted (it is only done for redeliveries).
            await conn.execute(insert(_deliveries).values(message_id=message_id,
                                                          method=method, deliveries=2))
            count = 2
        return int(count)


async def purge(engine: AsyncEngine, older_than: dt.timedelta) -> int:
    cutoff = utcnow() - older_than
    async with engine.begin() as conn:
        gone = await conn.execute(delete(_replies).where(_replies.c.created_at < cutoff))
        await conn.execute(delete(_deliveries).where(_deliveries.c.updated_at < cutoff))
    return gone.rowcount
