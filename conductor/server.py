"""AMQP side of the conductor: consume the topic queue, dispatch, reply, ack.

A message is acked after its reply is published, so a conductor that dies mid-call leaves
the message to the broker for redelivery.  Replies go to the caller's direct reply-to
queue with ``mandatory=False`` (RabbitMQ 3.10 both delivers and returns a mandatory
reply-to publish).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import signal
import time
from dataclasses import dataclass
from typing import Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from conductor.db import events, replies
from conductor.dispatch import Delivery, Dispatcher, encode_error
from conductor.outbox import OutboxPublisher
from schemas import envelope, exceptions

log = logging.getLogger(__name__)

DEFAULT_AMQP_URL = "amqp://guest:guest@localhost:5672/"
DEFAULT_TOPIC = "conductor"


@dataclass
class ServerOptions:
    amqp_url: str = DEFAULT_AMQP_URL
    topic: str = DEFAULT_TOPIC
    prefetch: int = 128
    quorum_queues: bool = False
    reply_retention: float = 3600.0  # seconds a write's reply stays replayable
    purge_interval: float = 60.0


class Server:
    def __init__(self, dispatcher: Dispatcher, options: ServerOptions | None = None) -> None:
        self.dispatcher = dispatcher
        self.options = options or ServerOptions()
        self._connection: aio_pika.abc.AbstractRobustConnection | None = None
        self._channel: aio_pika.abc.AbstractChannel | None = None
        self._queue: aio_pika.abc.AbstractQueue | None = None
        self._consumer_tag: str | None = None
        self._inflight: set[asyncio.Task[Any]] = set()
        self._stopped = asyncio.Event()
        self._purger: asyncio.Task[None] | None = None
        self.outbox: OutboxPublisher | None = None
        self.served = 0
        self.dead_lettered = 0

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.options.topic}.dead"

    async def start(self) -> None:
        self._connection = await aio_pika.connect_robust(
            self.options.amqp_url,
            client_properties={"connection_name": f"conductor:{self.options.topic}:"
                                                  f"{os.getpid()}"})
        self._channel = await self._connection.channel(publisher_confirms=False)
        await self._channel.set_qos(prefetch_count=self.options.prefetch)
        arguments: dict[str, Any] = {}
        if self.options.quorum_queues:
            arguments["x-queue-type"] = "quorum"
        self._queue = await self._channel.declare_queue(
            self.options.topic, durable=True, arguments=arguments)
        await self._channel.declare_queue(self.dead_letter_queue, durable=True,
                                          arguments=arguments)
        self.outbox = OutboxPublisher(self.dispatcher.engine, self._connection)
        await self.outbox.start()
        outbox = self.outbox
        self.dispatcher.after_commit = lambda info: outbox.kick() if info.events else None
        self._consumer_tag = await self._queue.consume(self._on_message)
        self._purger = asyncio.create_task(self._purge_replies())
        log.info("consuming %r on %s", self.options.topic, _safe_amqp(self.options.amqp_url))

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._inflight.add(task)
        try:
            await self._serve(message)
        finally:
            if task is not None:
                self._inflight.discard(task)

    async def _serve(self, message: AbstractIncomingMessage) -> None:
        body = message.body
        limit = self.dispatcher.options.max_message_size
        if limit and len(body) > limit:
            log.warning("refused message %s of %d bytes (limit %d)", message.message_id,
                        len(body), limit)
            reply: bytes | None = encode_error(exceptions.InvalidRequest(
                reason=f"request of {len(body)} bytes exceeds the limit of {limit}"))
        else:
            outcome = await self.dispatcher.handle(body, _delivery(message))
            reply = outcome.reply
        try:
            if reply is not None and message.reply_to:
                await self._reply(message, reply)
        except Exception:
            log.exception("could not publish the reply to %s", message.message_id)
        finally:
            self.served += 1
            await _ack(message)

    async def _reply(self, message: AbstractIncomingMessage, reply: bytes) -> None:
        assert self._channel is not None
        await self._channel.default_exchange.publish(
            aio_pika.Message(reply, content_type=envelope.CONTENT_TYPE,
                             correlation_id=message.correlation_id,
                             delivery_mode=aio_pika.DeliveryMode.NOT_PERSISTENT),
            routing_key=message.reply_to or "", mandatory=False)

    async def _dead_letter(self, message: AbstractIncomingMessage, method: str) -> None:
        assert self._channel is not None
        self.dead_lettered += 1
        try:
            await self._channel.default_exchange.publish(
                aio_pika.Message(message.body, content_type=message.content_type,
                                 message_id=message.message_id, type=method,
                                 headers={"x-conductor-reason": "redelivered past the limit",
                                          "x-conductor-topic": self.options.topic},
                                 delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                routing_key=self.dead_letter_queue)
        except Exception:
            log.exception("could not dead-letter %s (%s)", message.message_id, method)

    async def _purge_replies(self) -> None:
        retention = dt.timedelta(seconds=self.options.reply_retention)
        while True:
            await asyncio.sleep(self.options.purge_interval)
            try:
                gone = await replies.purge(self.dispatcher.engine, retention)
                gone += await events.purge_sent(self.dispatcher.engine, retention)
                if gone:
                    log.info("purged %d stored replies and sent events older than %s",
                             gone, retention)
            except Exception as exc:
                log.warning("purging stored replies failed: %s", exc)

    async def stop(self, grace: float = 30.0) -> None:
        """Stop consuming, let in-flight calls finish (up to ``grace`` s), close."""
        if self._purger is not None:
            self._purger.cancel()
            self._purger = None
        if self._queue is not None and self._consumer_tag is not None:
            try:
                await self._queue.cancel(self._consumer_tag)
            except Exception:
                log.debug("cancelling the consumer failed", exc_info=True)
            self._consumer_tag = None
        pending = [t for t in self._inflight if t is not asyncio.current_task()]
        if pending:
            log.info("waiting for %d in-flight calls", len(pending))
            done, still = await asyncio.wait(pending, timeout=grace)
            if still:
                log.warning("%d calls still running after %.0f s; closing anyway",
                            len(still), grace)
        if self.outbox is not None:
            await self.outbox.stop()
        if self._connection is not None:
            await self._connection.close()
        log.warning("stopped: served %d calls, dead-lettered %d", self.served,
                    self.dead_lettered)
        self._stopped.set()

    async def serve_forever(self) -> None:
        await self.start()
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, stop.set)
            except (NotImplementedError, RuntimeError):
                pass
        await stop.wait()
        log.info("signal received: stopping")
        await self.stop()


def _delivery(message: AbstractIncomingMessage) -> Delivery:
    return Delivery(message_id=message.message_id, redelivered=bool(message.redelivered),
                    received=time.monotonic())


async def _ack(message: AbstractIncomingMessage) -> None:
    try:
        await message.ack()
    except Exception:
        log.warning("could not ack %s (connection lost?); the broker will redeliver it",
                    message.message_id)


def _safe_amqp(url: str) -> str:
    from yarl import URL

    try:
        return str(URL(url).with_password("***")) if URL(url).password else url
    except Exception:
        return "<amqp url>"
