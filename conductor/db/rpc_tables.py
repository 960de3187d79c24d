"""The conductor's own bookkeeping tables (not Nova's): exactly-once replies, the outbox.

A write call stores its reply under the call's ``message_id`` in the transaction that makes
its effect, so a redelivered or retried message is answered from here instead of running
twice.  The reply is keyed to the call as well as the id (method, a digest of the
arguments, the caller), so a different call that reuses the id is refused instead of
being handed another caller's answer.  Redeliveries are counted by the broker (a quorum
queue's delivery limit), not here.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from conductor.db.base import Base, utcnow


class RpcReply(Base):
    __tablename__ = "rpc_replies"
    __table_args__ = (Index("ix_rpc_replies_created_at", "created_at"),)

    message_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    method: Mapped[str] = mapped_column(String(255), nullable=False)
    # blake2b (16 bytes) of the canonical encoding of the call's arguments.
    digest: Mapped[bytes] = mapped_column(LargeBinary(16), nullable=False)
    user_id: Mapped[str | None] = mapped_column(String(255))
    project_id: Mapped[str | None] = mapped_column(String(255))
    # The AMQP user the broker vouches for; filled once the transport passes it on.
    broker_user: Mapped[str | None] = mapped_column(String(255))
    reply: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False, default=utcnow)


class EventOutbox(Base):
    """Lifecycle events written with the change that causes them, published afterwards.

    A row is published (with publisher confirms) and then marked sent, so an event is
    never lost when a conductor dies between commit and publish, and never invented by a
    change that rolled back; consumers de-duplicate by ``event_id``.
    """

    __tablename__ = "event_outbox"
    __table_args__ = (Index("ix_event_outbox_sent_at_id", "sent_at", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(36), nullable=False, unique=True)
    routing_key: Mapped[str] = mapped_column(String(255), nullable=False)
    body: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
