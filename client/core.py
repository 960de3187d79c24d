"""The async client: one method per catalog function, RPC over RabbitMQ direct reply-to."""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import aio_pika
import aiormq
from aio_pika.abc import AbstractIncomingMessage

from client import _methods
from client.jobs import JobQueue
from schemas import catalog, envelope, exceptions
from schemas.conditions import constraint, equal_any, not_equal
from schemas.context import RequestContext

log = logging.getLogger(__name__)

REPLY_QUEUE = "amq.rabbitmq.reply-to"
DEFAULT_URL = "amqp://guest:guest@localhost:5672/"


@dataclass(frozen=True)
class CallOptions:
    """Per-call transport options, kept out of Nova's signatures."""

    timeout: float = 60.0
    retries: int = 0
    cast: bool = False


class _Pending:
    __slots__ = ("future", "method")

    def __init__(self, future: asyncio.Future[bytes], method: str) -> None:
        self.future = future
        self.method = method


class _Transport:
    """The shared connection, channel and reply consumer of one client.

    Reconnection is done here rather than by aio-pika's robust connection: a direct
    reply-to publish is refused on a channel whose reply consumer is not back yet, so a
    new connection is only used once its reply consumer is in place.
    """

    def __init__(self, url: str, topic: str) -> None:
        self.url = url
        self.topic = topic
        self.connection: aio_pika.abc.AbstractConnection | None = None
        self.channel: aio_pika.abc.AbstractChannel | None = None
        self.pending: dict[str, _Pending] = {}
        self._lock = asyncio.Lock()
        self._closing = False

    @property
    def connected(self) -> bool:
        return self.channel is not None and not self.channel.is_closed

    async def connect(self, timeout: float | None = None) -> None:
        async with self._lock:
            if self.connected:
                return
            self._closing = False
            try:
                connection = await aio_pika.connect(
                    self.url, timeout=timeout,
                    client_properties={"connection_name": f"client:{self.topic}:"
                                                          f"{os.getpid()}"})
            except (aiormq.exceptions.AMQPError, OSError, TimeoutError) as exc:
                raise exceptions.ConnectionLost(method="connect") from exc
            connection.close_callbacks.add(self._on_close)
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            channel.close_callbacks.add(self._on_close)
            # Direct reply-to: consume before publishing, on the publishing channel.
            reply_queue = await channel.get_queue(REPLY_QUEUE, ensure=False)
            await reply_queue.consume(self._on_reply, no_ack=True)
            self.connection = connection
            self.channel = channel

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        pending = self.pending.pop(message.correlation_id or "", None)
        if pending is not None and not pending.future.done():
            pending.future.set_result(message.body)

    def _on_close(self, closed: Any, exc: BaseException | None = None) -> None:
        # Replies to calls in flight went to a reply-to queue that died with the
        # connection: fail them now rather than at their timeout.
        if closed is not self.connection and closed is not self.channel:
            return
        self.connection = None
        self.channel = None
        pending, self.pending = self.pending, {}
        for p in pending.values():
            if not p.future.done():
                p.future.set_exception(exceptions.ConnectionLost(method=p.method))

    async def wait_connected(self, timeout: float) -> None:
        """Reconnect after a cut, retrying for at most ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        delay = 0.1
        while not self.connected:
            try:
                await self.connect(timeout=max(deadline - loop.time(), 0.1))
            except exceptions.ConnectionLost:
                if loop.time() + delay > deadline:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def close(self) -> None:
        connection, self.connection, self.channel = self.connection, None, None
        if connection is not None:
            await connection.close()

    async def publish(self, func: catalog.Function, body: bytes, message_id: str,
                      options: CallOptions) -> bytes | None:
        if not self.connected:
            await self.connect(timeout=options.timeout)
        channel = self.channel
        assert channel is not None
        loop = asyncio.get_running_loop()
        message = aio_pika.Message(
            body, content_type=envelope.CONTENT_TYPE, message_id=message_id,
            correlation_id=message_id, type=func.name,
            expiration=max(options.timeout, 0.001),
            reply_to=None if options.cast else REPLY_QUEUE,
            delivery_mode=aio_pika.DeliveryMode.NOT_PERSISTENT)
        future: asyncio.Future[bytes] | None = None
        if not options.cast:
            future = loop.create_future()
            self.pending[message_id] = _Pending(future, func.name)
        try:
            try:
                await channel.default_exchange.publish(
                    message, routing_key=self.topic, mandatory=True,
                    timeout=options.timeout)
            except aiormq.exceptions.DeliveryError as exc:
                if _unroutable(exc):
                    raise exceptions.NoConductor(topic=self.topic, method=func.name) \
                        from None
                raise exceptions.ConnectionLost(method=func.name) from None
            except (aiormq.exceptions.AMQPConnectionError,
                    aiormq.exceptions.ChannelInvalidStateError, ConnectionError) as exc:
                raise exceptions.ConnectionLost(method=func.name) from exc
            if future is None:
                return None
            try:
                return await asyncio.wait_for(future, options.timeout)
            except TimeoutError:
                raise exceptions.RPCTimeout(timeout=options.timeout, method=func.name) \
                    from None
        finally:
            self.pending.pop(message_id, None)


def _unroutable(exc: aiormq.exceptions.DeliveryError) -> bool:
    frame = getattr(exc, "frame", None)
    return getattr(frame, "reply_code", None) == 312 or "NO_ROUTE" in str(exc)


class ConductorClient:
    """``async with ConductorClient(url) as db: await db.instance_get(ctxt, 1)``."""

    constraint = staticmethod(constraint)
    equal_any = staticmethod(equal_any)
    not_equal = staticmethod(not_equal)

    def __init__(self, url: str = DEFAULT_URL, topic: str = "conductor",
                 timeout: float = 60.0, retries: int = 0) -> None:
        self._transport = _Transport(url, topic)
        self._options = CallOptions(timeout=timeout, retries=retries)

    @property
    def topic(self) -> str:
        return self._transport.topic

    async def connect(self) -> ConductorClient:
        await self._transport.connect()
        return self

    async def close(self) -> None:
        await self._transport.close()

    async def __aenter__(self) -> ConductorClient:
        return await self.connect()

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    def options(self, *, timeout: float | None = None, retries: int | None = None,
                cast: bool | None = None) -> ConductorClient:
        """A view of this client whose calls use other options (same connection)."""
        view = object.__new__(type(self))
        view.__dict__.update(self.__dict__)
        changes = {k: v for k, v in (("timeout", timeout), ("retries", retries),
                                     ("cast", cast)) if v is not None}
        view._options = replace(self._options, **changes)
        return view

    async def call(self, method: str, context: RequestContext, *args: Any,
                   **kwargs: Any) -> Any:
        """Call ``method`` by name (what the generated methods do)."""
        func = catalog.get(method)
        if func is None or func.kind == "local":
            raise AttributeError(f"the conductor API has no function {method!r}")
        return await self._invoke(func, func.signature.bind(context, *args, **kwargs))

    def _invoke(self, func: catalog.Function, bound: inspect.BoundArguments) -> Any:
        return self._send(func, bound)

    async def _send(self, func: catalog.Function, bound: inspect.BoundArguments,
                    message_id: str | None = None) -> Any:
        context = _context_of(func.name, bound)
        args, kwargs = list(bound.args[1:]), dict(bound.kwargs)

        def request(attempt: int, timeout: float) -> envelope.Request:
            return envelope.Request(func.name, args, kwargs, context.to_dict(),
                                    deadline=time.time() + timeout, timeout=timeout,
                                    attempt=attempt)

        return await self._roundtrip(func, request, message_id)

    async def _send_batch(self, calls: list[tuple[catalog.Function, inspect.BoundArguments]]
                          ) -> list[Any]:
        queued = [envelope.Call(func.name, list(bound.args[1:]), dict(bound.kwargs),
                                _context_of(func.name, bound).to_dict())
                  for func, bound in calls]

        def request(attempt: int, timeout: float) -> envelope.Request:
            return envelope.Request(envelope.BATCH_METHOD, [], {}, queued[0].context or {},
                                    deadline=time.time() + timeout, calls=queued,
                                    timeout=timeout, attempt=attempt)

        return await self._roundtrip(_BATCH, request, None)  # type: ignore[no-any-return]

    async def _roundtrip(self, func: catalog.Function,
                         request: Callable[[int, float], envelope.Request],
                         message_id: str | None) -> Any:
        options = self._options
        message_id = message_id or uuid.uuid4().hex
        attempts = 1 + max(options.retries, 0)
        for attempt in range(1, attempts + 1):
            body = request(attempt, options.timeout).encode()
            try:
                reply = await self._transport.publish(func, body, message_id, options)
            except (exceptions.ConnectionLost, exceptions.RPCTimeout) as exc:
                if attempt >= attempts:
                    raise
                log.info("%s: %s; retrying (%d/%d) with the same message id", func.name,
                         type(exc).__name__, attempt, attempts - 1)
                try:
                    await self._transport.wait_connected(options.timeout)
                except exceptions.ConnectionLost:
                    if attempt + 1 >= attempts:
                        raise
                continue
            if reply is None:
                return None
            ok, value = envelope.decode_reply(reply)
            if ok:
                return value
            raise exceptions.from_wire(value)
        raise AssertionError("unreachable")

    def job_queue(self, max_calls: int = envelope.DEFAULT_MAX_BATCH) -> AsyncJobQueue:
        """``async with db.job_queue() as q:`` queues writes and sends them as one batch,
        run in order in one transaction, all or nothing (database-snapshots.md)."""
        return AsyncJobQueue(self, max_calls)


_BATCH = catalog.Function(envelope.BATCH_METHOD, (), "write", "none")


def _context_of(name: str, bound: inspect.BoundArguments) -> RequestContext:
    context = bound.arguments.get("context")
    if not isinstance(context, RequestContext):
        raise TypeError(f"{name}: context must be a RequestContext, "
                        f"not {type(context).__name__}")
    return context


class AsyncJobQueue(JobQueue):
    def __init__(self, client: ConductorClient, max_calls: int) -> None:
        super().__init__(max_calls)
        self._client = client

    async def __aenter__(self) -> AsyncJobQueue:
        return self

    async def __aexit__(self, exc_type: Any, *exc: Any) -> None:
        if exc_type is None and self._calls:
            self._finish(await self._client._send_batch(self._calls))


_methods.install(ConductorClient, ConductorClient._invoke)
