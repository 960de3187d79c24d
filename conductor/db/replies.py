"""Exactly-once bookkeeping: stored replies of write calls, keyed to the call."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from conductor.db import direct
from conductor.db.base import utcnow
from conductor.db.rpc_tables import RpcReply
from schemas import codec

_replies = RpcReply.__table__


@dataclass(frozen=True)
class CallKey:
    """What makes a message the same call: a stored reply answers only its own call."""

    method: str
    digest: bytes
    user_id: str | None
    project_id: str | None
    broker_user: str | None = None


def digest(arguments: Any) -> bytes:
    """A digest of the call's arguments in the codec's canonical encoding.

    The codec sorts sets and keeps map order, and a genuine retry resends the same
    body, so the same call always gives the same digest.
    """
    return hashlib.blake2b(codec.packb(arguments), digest_size=16).digest()


async def stored_reply(conn: AsyncConnection, message_id: str) -> tuple[CallKey, bytes] | None:
    result = await conn.execute(
        select(_replies.c.method, _replies.c.digest, _replies.c.user_id,
               _replies.c.project_id, _replies.c.broker_user, _replies.c.reply)
        .where(_replies.c.message_id == message_id))
    row = result.first()
    if row is None:
        return None
    return CallKey(row.method, bytes(row.digest), row.user_id, row.project_id,
                   row.broker_user), bytes(row.reply)


_COLUMNS = ("message_id", "method", "digest", "user_id", "project_id", "broker_user",
            "reply", "created_at")
_RECORD = direct.Statement(insert(_replies).values(
    {n: bindparam(n, type_=_replies.c[n].type) for n in _COLUMNS}),
                           _COLUMNS)


async def record_reply(conn: AsyncConnection, message_id: str, key: CallKey,
                       reply: bytes) -> None:
    """In the call's own transaction: a duplicate id raises IntegrityError there."""
    await _RECORD.execute(conn, {
        "message_id": message_id, "method": key.method, "digest": key.digest,
        "user_id": key.user_id, "project_id": key.project_id,
        "broker_user": key.broker_user, "reply": reply, "created_at": utcnow()})


async def purge(engine: AsyncEngine, older_than: dt.timedelta) -> int:
    cutoff = utcnow() - older_than
    async with engine.begin() as conn:
        gone = await conn.execute(delete(_replies).where(_replies.c.created_at < cutoff))
    return int(gone.rowcount)
