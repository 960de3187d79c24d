"""The event outbox: lifecycle events recorded in the call's transaction, sent later."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from conductor.db import direct
from conductor.db.base import utcnow
from conductor.db.rpc_tables import EventOutbox
from schemas import codec

EXCHANGE = "conductor.events"
_outbox = EventOutbox.__table__
_COLUMNS = ("event_id", "routing_key", "body", "created_at")
_RECORD = direct.Statement(insert(_outbox).values(
    {n: bindparam(n, type_=_outbox.c[n].type) for n in _COLUMNS}),
                           _COLUMNS)


async def record(session: Any, event: str, resource_type: str, resource_id: str,
                 payload: dict[str, Any], request_id: str | None) -> str:
    """Add an event to the outbox of the session's transaction; returns its id."""
    event_id = str(uuid.uuid4())
    now = utcnow()
    body = codec.packb({"event": event, "event_id": event_id,
                        "resource_type": resource_type, "resource_id": resource_id,
                        "occurred_at": now, "request_id": request_id, "payload": payload})
    await _RECORD.execute(session.conn, {"event_id": event_id, "routing_key": event,
                                         "body": body, "created_at": now})
    session.events_recorded += 1
    return event_id


async def publish_pending(engine: AsyncEngine, publish: Any, limit: int = 200) -> int:
    """Publish unsent events in order with ``await publish(event_id, routing_key, body)``
    (which returns once the broker confirmed), then mark them sent.

    Rows are claimed with ``FOR UPDATE SKIP LOCKED``, so several conductors share the
    outbox without sending one event twice while all of them live.
    """
    async with engine.begin() as conn:
        locking = conn.dialect.name == "postgresql"
        stmt = (select(_outbox.c.id, _outbox.c.event_id, _outbox.c.routing_key,
                       _outbox.c.body)
                .where(_outbox.c.sent_at.is_(None)).order_by(_outbox.c.id).limit(limit))
        if locking:
            stmt = stmt.with_for_update(skip_locked=True)
        rows = (await conn.execute(stmt)).all()
        sent = []
        for row in rows:
            await publish(row.event_id, row.routing_key, row.body)
            sent.append(row.id)
        if sent:
            await conn.execute(update(_outbox).where(_outbox.c.id.in_(sent))
                               .values(sent_at=utcnow()))
        return len(sent)


async def backlog(engine: AsyncEngine) -> int:
    """Committed events not yet published."""
    async with engine.connect() as conn:
        result = await conn.execute(select(func.count()).select_from(_outbox)
                                    .where(_outbox.c.sent_at.is_(None)))
        return int(result.scalar() or 0)


async def purge_sent(engine: AsyncEngine, older_than: dt.timedelta) -> int:
    async with engine.begin() as conn:
        gone = await conn.execute(delete(_outbox).where(
            _outbox.c.sent_at.is_not(None), _outbox.c.sent_at < utcnow() - older_than))
    return gone.rowcount
