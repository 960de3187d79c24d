"""The conductor's own bookkeeping tables (not Nova's): exactly-once replies, deliveries.

A write call stores its reply under the call's ``message_id`` in the transaction that makes
its effect, so a redelivered or retried message is answered from here instead of running
twice.  ``rpc_deliveries`` counts redeliveries of a message, so one that keeps killing its
worker is dead-lettered after a bounded number of attempts.
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
    reply: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False, default=utcnow)


class RpcDelivery(Base):
    __tablename__ = "rpc_deliveries"
    __table_args__ = (Index("ix_rpc_deliveries_updated_at", "updated_at"),)

    message_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    method: Mapped[str] = mapped_column(String(255), nullable=False)
    deliveries: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False, default=utcnow,
                                                    onupdate=utcnow)


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
