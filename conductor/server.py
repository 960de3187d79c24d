"""AMQP side of the conductor: declare the topic, consume it, reply, ack.

Knows AMQP only: what a call does is the ``handle`` callable's business (the dispatcher).
A message is acked after its reply is published, so a conductor that dies mid-call leaves
the message to the broker for redelivery; the broker, not this code, counts those
deliveries (the topic queue's ``x-delivery-limit``) and dead-letters a message that keeps
coming back.

Three connections, so that nothing a caller controls can cost the consuming one:
consuming and acking; replies to broker nodes already answered once; and a confirming
connection that probes a caller's node the first time it is seen.  RabbitMQ closes the
whole publishing connection (541 INTERNAL_ERROR) when a reply goes to a well-formed direct
reply-to address naming a node that does not exist; that costs the probe connection and
that one reply, never an ack or another caller's reply.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import aio_pika
import aiormq
from aio_pika.abc import (
    AbstractChannel,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)

from client.urls import broker_urls, masked
from conductor import broker
from conductor.amqp_decoding import undecodable
from conductor.dispatch import Delivery
from conductor.settings import Settings
from schemas import envelope

log = logging.getLogger(__name__)

# Dead-lettered messages carry the broker's reason; only these reach <topic>.dead.
# "expired" (a call nobody waits for any more) routes nowhere and is dropped.
POISON_REASONS = ("delivery_limit",)
# Seconds a first reply to a node waits for its confirm: a reply the broker never
# confirms (its connection lost mid-way) must not keep the call from being acked.
PROBE_TIMEOUT = 5.0
# Seconds a reply waits for its channel to be reconnected (aio-pika retries every 5 s, or
# every second with several broker URLs).
REOPEN_WAIT = 10.0


class QueueMismatch(RuntimeError):
    """The topic queue exists with other arguments; the message says what to do."""


class Outcome(Protocol):
    reply: bytes | None


Handle = Callable[[bytes, Delivery], Awaitable[Outcome]]


class Server:
    def __init__(self, handle: Handle, settings: Settings | None = None) -> None:
        self.handle = handle
        self.settings = settings or Settings()
        self._connections: list[AbstractRobustConnection] = []
        self._channel: AbstractChannel | None = None
        self._queue: AbstractQueue | None = None
        self._replies: AbstractChannel | None = None
        self._probe: AbstractChannel | None = None
        self._known_nodes: set[bytes] = set()
        self._slow_tag: str | None = None
        self._fast_tag: str | None = None
        self._consuming = False
        self._ramp: asyncio.Task[None] | None = None
        self._inflight: set[asyncio.Task[Any]] = set()
        self.served = 0
        self.dropped = 0

    @property
    def consuming(self) -> bool:
        """The consumer is attached to an open channel (what /healthz reports)."""
        channel = self._channel
        return self._consuming and channel is not None and not channel.is_closed and \
            (self._fast_tag is not None or self._slow_tag is not None)

    async def queue_depth(self, name: str) -> int | None:
        """Messages ready in queue ``name`` (passive: never declares), or None if it is
        missing; raises when the broker does not answer."""
        if not self._connections or self._connections[0].is_closed:
            raise ConnectionError("no connection to the broker")
        # A channel of its own: a passive declare of a missing queue closes its channel.
        channel = await self._connections[0].channel(publisher_confirms=False)
        try:
            queue = await channel.declare_queue(name, passive=True, robust=False)
            return int(queue.declaration_result.message_count or 0)
        except aiormq.exceptions.ChannelNotFoundEntity:
            return None
        finally:
            if not channel.is_closed:
                await channel.close()

    @property
    def topic(self) -> str:
        return self.settings.topic

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            await self._close_connections()
            raise

    async def _start(self) -> None:
        name = f"conductor:{self.topic}:{os.getpid()}"
        url = self.settings.amqp_url
        consuming = await broker.connect(url, name)
        self._connections.append(consuming)
        await self._declare(consuming)
        replies = await broker.connect(url, f"{name}:reply")
        self._connections.append(replies)
        # Its loss may have been a reply to a node that went away since it was probed
        # (RabbitMQ closes the connection, 541): every node is probed again.
        replies.close_callbacks.add(self._forget_nodes)
        self._replies = await replies.channel(publisher_confirms=False)
        probe = await broker.connect(url, f"{name}:probe")
        self._connections.append(probe)
        self._probe = await probe.channel(publisher_confirms=True)
        self._channel = await consuming.channel(publisher_confirms=False)
        self._queue = await self._channel.declare_queue(
            self.topic, durable=True, arguments=self._topic_arguments())
        self._channel.reopen_callbacks.add(self._on_reopen)  # type: ignore[attr-defined]
        self._consuming = True
        await self._consume_slowly()
        log.info("consuming %r (%s queue, delivery limit %d) on %s", self.topic,
                 "classic" if self.settings.classic_queue else "quorum",
                 self.settings.max_deliveries,
                 ", ".join(masked(one) for one in broker_urls(url)))

    def _topic_arguments(self) -> dict[str, Any]:
        if self.settings.classic_queue:
            return {}
        return {"x-queue-type": "quorum",
                "x-delivery-limit": self.settings.max_deliveries,
                "x-dead-letter-exchange": self.settings.dead_letter_exchange}

    async def _declare(self, connection: AbstractRobustConnection) -> None:
        """Declare the topic queue and its dead-letter target, or say why not.

        On a disposable channel: a declaration the broker refuses closes its channel.
        A classic topic queue has no delivery limit, so nothing is dead-lettered from it.
        """
        channel = await connection.channel(publisher_confirms=False)
        try:
            await channel.declare_queue(self.topic, durable=True,
                                        arguments=self._topic_arguments(), robust=False)
            if not self.settings.classic_queue:
                exchange = await channel.declare_exchange(
                    self.settings.dead_letter_exchange, aio_pika.ExchangeType.HEADERS,
                    durable=True, robust=False)
                queue = await channel.declare_queue(
                    self.settings.dead_letter_queue, durable=True,
                    arguments={"x-queue-type": "quorum"}, robust=False)
                for reason in POISON_REASONS:
                    # "all-with-x": a headers exchange ignores x- headers unless told.
                    await queue.bind(exchange, arguments={"x-match": "all-with-x",
                                                          "x-first-death-reason": reason},
                                     robust=False)
        except aiormq.exceptions.ChannelPreconditionFailed as exc:
            raise QueueMismatch(self._mismatch_message(exc)) from None
        finally:
            if not channel.is_closed:
                await channel.close()

    def _mismatch_message(self, exc: BaseException) -> str:
        topic, dead = self.topic, self.settings.dead_letter_queue
        wanted = "a classic queue" if self.settings.classic_queue else (
            f"a quorum queue with x-delivery-limit {self.settings.max_deliveries} "
            f"dead-lettering to {self.settings.dead_letter_exchange}")
        return (
            f"the queue {topic!r} or {dead!r} exists with other arguments than this "
            f"conductor declares ({wanted}); the broker says: {exc}.\n"
            f"To migrate: stop every conductor of this topic, let callers drain (or move "
            f"its messages with a shovel), delete the old queues "
            f"(rabbitmqctl delete_queue {topic}; rabbitmqctl delete_queue {dead}) and "
            f"start the conductor, which declares them anew. Or keep the old queue: run "
            f"with --classic-queue if it is classic, or with the --max-deliveries it was "
            f"declared with.")

    # -- consuming: one call at a time after a (re)start, then --prefetch at once ---------

    async def _consume_slowly(self) -> None:
        """Hold one call until the broker hands out a call nobody held before.

        After a crash or a channel loss the broker returns the calls the lost consumer
        held, in their order, ahead of new ones.  Taking them one at a time means a
        poison message among them takes down only itself at its next deliveries: the
        calls behind it are not held, so their delivery counts do not grow with its.
        """
        assert self._channel is not None and self._queue is not None
        await self._channel.set_qos(prefetch_count=1)
        self._fast_tag = None
        self._slow_tag = await self._queue.consume(self._on_message, robust=False)

    async def _consume_fully(self) -> None:
        assert self._channel is not None and self._queue is not None
        slow = self._slow_tag
        if slow is None or not self._consuming:
            return
        # basic.qos applies to consumers started after it: start a second consumer.
        await self._channel.set_qos(prefetch_count=self.settings.prefetch)
        self._fast_tag = await self._queue.consume(self._on_message, robust=False)
        self._slow_tag = None
        await self._queue.cancel(slow)

    def _on_reopen(self, *_: Any) -> None:
        # The broker returned what the lost channel held: begin again one at a time.
        self._slow_tag = self._fast_tag = None
        if self._ramp is not None:
            self._ramp.cancel()  # a ramp begun on the lost channel
        if self._consuming:
            self._ramp = asyncio.ensure_future(self._restart_slowly())

    async def _restart_slowly(self) -> None:
        try:
            await self._consume_slowly()
        except Exception as exc:
            log.warning("resuming consumption failed (the connection will retry): %s", exc)

    def _maybe_ramp(self, message: AbstractIncomingMessage) -> None:
        if self._slow_tag is None or message.redelivered:
            return
        if self._ramp is None or self._ramp.done():
            self._ramp = asyncio.ensure_future(self._ramp_up())

    async def _ramp_up(self) -> None:
        try:
            await self._consume_fully()
        except Exception as exc:
            log.warning("raising the prefetch failed: %s", exc)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._inflight.add(task)
        try:
            self._maybe_ramp(message)
            await self._serve(message)
        finally:
            if task is not None:
                self._inflight.discard(task)

    async def _serve(self, message: AbstractIncomingMessage) -> None:
        try:
            reason = undecodable(message.headers)
            if reason is not None:
                self.dropped += 1
                log.warning("dropped a message whose AMQP properties cannot be decoded "
                            "(%.200s)", reason)
                return
            node = _reply_node(message.reply_to) if message.reply_to else None
            if message.reply_to and node is None:
                # Not an address RabbitMQ hands out: nobody can be waiting for the reply,
                # and a forged one can close the publishing connection.  Run nothing.
                self.dropped += 1
                log.warning("dropped %.80s (%.80s): reply_to %.80r is not a direct "
                            "reply-to address", message.message_id, message.type,
                            message.reply_to)
                return
            outcome = await self.handle(message.body, _delivery(message))
            if outcome.reply is not None and node is not None:
                await self._reply(message, outcome.reply, node)
        except Exception:
            log.exception("serving %.80s failed", message.message_id)
        finally:
            self.served += 1
            await _ack(message)

    async def _reply(self, message: AbstractIncomingMessage, reply: bytes,
                     node: bytes) -> None:
        assert self._replies is not None and self._probe is not None
        known = node in self._known_nodes
        channel = self._replies if known else self._probe
        try:
            await _reopened(channel)
            await channel.default_exchange.publish(
                aio_pika.Message(reply, content_type=envelope.CONTENT_TYPE,
                                 correlation_id=message.correlation_id,
                                 delivery_mode=aio_pika.DeliveryMode.NOT_PERSISTENT),
                # mandatory=False: RabbitMQ 3.10 both delivers and returns a mandatory
                # reply-to publish.
                routing_key=message.reply_to or "", mandatory=False,
                timeout=None if known else PROBE_TIMEOUT)
        except Exception as exc:
            log.warning("could not reply to %.80s (%.80s) at %.80r: %s: %s", message.message_id,
                        message.type, message.reply_to, type(exc).__name__, exc)
            return
        if not known:
            self._known_nodes.add(node)  # confirmed: a node the broker knows

    def _forget_nodes(self, *_: Any) -> None:
        self._known_nodes.clear()

    async def stop(self, grace: float = 30.0) -> None:
        """Stop consuming, let in-flight calls finish (up to ``grace`` s), close."""
        self._consuming = False
        if self._ramp is not None:
            self._ramp.cancel()
        for tag in (self._slow_tag, self._fast_tag):
            if self._queue is not None and tag is not None:
                try:
                    await self._queue.cancel(tag)
                except Exception:
                    log.debug("cancelling the consumer failed", exc_info=True)
        self._slow_tag = self._fast_tag = None
        pending = [t for t in self._inflight if t is not asyncio.current_task()]
        if pending:
            log.info("waiting for %d in-flight calls", len(pending))
            _, still = await asyncio.wait(pending, timeout=grace)
            if still:
                log.warning("%d calls still running after %.0f s; closing anyway",
                            len(still), grace)
        await self._close_connections()
        log.warning("stopped: served %d calls, dropped %d", self.served, self.dropped)


    async def _close_connections(self) -> None:
        while self._connections:
            await self._connections.pop().close()


_REPLY_TO = re.compile(
    r"amq\.rabbitmq\.reply-to\.(?P<pid>[A-Za-z0-9+/]{8,200}={0,2})"
    r"\.(?P<key>[A-Za-z0-9+/]{22}==)")


@functools.lru_cache(maxsize=4096)  # a caller's channel keeps its address: parse it once
def _reply_node(reply_to: str) -> bytes | None:
    """The node named by a well-formed direct reply-to address, else None.

    RabbitMQ hands out ``amq.rabbitmq.reply-to.<base64 of term_to_binary(channel pid)>.
    <base64 of 16 random bytes>``; the pid's external term format (version 131, PID_EXT
    or NEW_PID_EXT) starts with the node name as an atom.
    """
    match = _REPLY_TO.fullmatch(reply_to)
    if match is None:
        return None
    try:
        pid = base64.b64decode(match["pid"], validate=True)
        if len(base64.b64decode(match["key"], validate=True)) != 16:
            return None
    except (binascii.Error, ValueError):
        return None
    if len(pid) < 5 or pid[0] != 131 or pid[1] not in (ord("g"), ord("X")):
        return None
    atom = pid[2]
    if atom in (100, 118):  # ATOM_EXT, ATOM_UTF8_EXT: 2-byte length
        length, start = int.from_bytes(pid[3:5], "big"), 5
    elif atom in (115, 119):  # SMALL_ATOM_EXT, SMALL_ATOM_UTF8_EXT: 1-byte length
        length, start = pid[3], 4
    else:
        return None
    node = pid[start:start + length]
    if len(node) != length or b"@" not in node:
        return None
    return node


def _delivery(message: AbstractIncomingMessage) -> Delivery:
    # Headers are the publisher's: a delivery count is believed from the broker alone,
    # which enforces it on the queue.
    # user_id is the one property the broker vouches for: RabbitMQ refuses a publish whose
    # user_id is not the publishing connection's login.
    user = message.user_id
    return Delivery(message_id=message.message_id, redelivered=bool(message.redelivered),
                    received=time.monotonic(),
                    broker_user=user if isinstance(user, str) and user else None)


async def _reopened(channel: AbstractChannel) -> None:
    """Wait until a robust channel lost with its connection is back (a reply that waits
    a few seconds is answered; one published on the closed channel is lost)."""
    deadline = time.monotonic() + REOPEN_WAIT
    while channel.is_closed and time.monotonic() < deadline:
        await asyncio.sleep(0.1)


async def _ack(message: AbstractIncomingMessage) -> None:
    try:
        await message.ack()
    except Exception:
        log.warning("could not ack %.80s (connection lost?); the broker will redeliver it",
                    message.message_id)
