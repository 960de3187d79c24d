"""Publishing the event outbox: after each committed change, and periodically.

The periodic pass sends what a conductor that died between commit and publish left
behind. Publishing uses publisher confirms and marks rows sent only after the broker
confirmed them: at least once, never lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import aio_pika
from sqlalchemy.ext.asyncio import AsyncEngine

from conductor.db import events
from schemas import envelope

log = logging.getLogger(__name__)


class OutboxPublisher:
    def __init__(self, engine: AsyncEngine, connection: aio_pika.abc.AbstractConnection,
                 exchange: str = events.EXCHANGE, interval: float = 2.0) -> None:
        self.engine = engine
        self.connection = connection
        self.exchange_name = exchange
        self.interval = interval
        self.batch = 200  # events claimed per transaction
        self.linger = 0.05  # seconds an event may wait for others to share its flush
        self.published = 0
        self._kick = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._exchange: aio_pika.abc.AbstractExchange | None = None

    async def start(self) -> None:
        channel = await self.connection.channel(publisher_confirms=True)
        self._exchange = await channel.declare_exchange(
            self.exchange_name, aio_pika.ExchangeType.TOPIC, durable=True)
        self._task = asyncio.create_task(self._run())

    def kick(self) -> None:
        self._kick.set()

    async def _publish(self, event_id: str, routing_key: str, body: bytes) -> None:
        assert self._exchange is not None
        await self._exchange.publish(
            aio_pika.Message(body, content_type=envelope.CONTENT_TYPE, message_id=event_id,
                             type=routing_key,
                             delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            # An event nobody subscribed to is dropped by the broker, as a topic exchange
            # means; mandatory would only make the broker send each one back.
            routing_key=routing_key, mandatory=False)

    async def flush(self) -> int:
        total = 0
        while True:
            sent = await events.publish_pending(self.engine, self._publish, self.batch)
            total += sent
            if sent < self.batch:  # drained: no second transaction to find nothing
                break
        self.published += total
        return total

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), self.interval)
            # Commits that follow within the linger share one flush: at one call at a time
            # a flush per event (a transaction and a confirm each) cost more CPU than the
            # call that recorded it.
            await asyncio.sleep(self.linger)
            self._kick.clear()
            try:
                await self.flush()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("publishing events failed (will retry): %s: %s",
                            type(exc).__name__, exc)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):
            await self.flush()



