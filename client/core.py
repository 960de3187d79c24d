"""The async client: one method per catalog function, RPC over RabbitMQ direct reply-to."""

from __future__ import annotations

import asyncio
import copy
import logging
import os
import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol, Self

import aio_pika
import aiormq
import pamqp.commands
import yarl
from aio_pika.abc import AbstractIncomingMessage

from client._api import AsyncAPI
from client.jobs import JobQueue, QueuedCall, bind
from client.urls import broker_url, broker_urls, masked
from schemas import catalog, envelope, exceptions
from schemas.conditions import constraint, equal_any, not_equal
from schemas.context import RequestContext

log = logging.getLogger(__name__)

REPLY_QUEUE = "amq.rabbitmq.reply-to"
DEFAULT_URL = "amqp://guest:guest@localhost:5672/"
# Pauses before the retries of a call: doubled each time, up to the maximum.
RETRY_PAUSE = 0.25
MAX_RETRY_PAUSE = 4.0
# Seconds a publish the broker refuses (nack) is sent again on the same channel.
NACK_PATIENCE = 3.0


@dataclass(frozen=True)
class CallOptions:
    """Per-call transport options, kept out of Nova's signatures."""

    timeout: float = 60.0
    retries: int = 0
    cast: bool = False
    # The idempotency key, for a caller that repeats one call by hand after a crash of its
    # own; by default every call gets a fresh one (and keeps it across its retries).
    message_id: str | None = None


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

    def __init__(self, urls: Sequence[str], topic: str) -> None:
        self.urls = list(urls)
        self._next_url = 0  # the node tried first at the next connect
        self.topic = topic
        self.connection: aio_pika.abc.AbstractConnection | None = None
        self.channel: aio_pika.abc.AbstractChannel | None = None
        self.pending: dict[str, _Pending] = {}
        self._lock = asyncio.Lock()
        self._closing = False
        self._closing_tasks: set[asyncio.Task[Any]] = set()

    @property
    def connected(self) -> bool:
        return self.channel is not None and not self.channel.is_closed

    async def connect(self, timeout: float | None = None) -> None:
        async with self._lock:
            if self.connected:
                return
            self._closing = False
            connection = await self._connect_any(timeout)
            connection.close_callbacks.add(self._on_close)
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            channel.close_callbacks.add(self._on_close)
            # Direct reply-to: consume before publishing, on the publishing channel.
            reply_queue = await channel.get_queue(REPLY_QUEUE, ensure=False)
            await reply_queue.consume(self._on_reply, no_ack=True)
            self.connection = connection
            self.channel = channel

    async def _connect_any(self, timeout: float | None) -> aio_pika.abc.AbstractConnection:
        """A connection to the first node that answers, from the one after the node
        last lost; ConnectionLost if none does."""
        failures: list[str] = []
        failure: BaseException | None = None
        for _ in self.urls:
            url = self.urls[self._next_url]
            try:
                return await aio_pika.connect(
                    url, timeout=timeout,
                    client_properties={"connection_name": f"client:{self.topic}:"
                                                          f"{os.getpid()}"})
            except (aiormq.exceptions.AMQPError, OSError, TimeoutError) as exc:
                # Why, in the message: a refused certificate or login is not a lost link.
                failure = exc
                failures.append(f"{masked(url)}: {type(exc).__name__}: {_reply_text(exc)}")
                self._next_url = (self._next_url + 1) % len(self.urls)
        raise exceptions.ConnectionLost(
            f"Could not connect to the broker at {'; '.join(failures)}",
            method="connect") from failure

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        pending = self.pending.pop(message.correlation_id or "", None)
        if pending is not None and not pending.future.done():
            pending.future.set_result(message.body)

    def _on_close(self, closed: Any, exc: BaseException | None = None) -> None:
        # Replies to calls in flight went to a reply-to queue that died with the
        # connection: fail them now rather than at their timeout.
        if closed is not self.connection and closed is not self.channel:
            return
        connection = self.connection
        self.connection = None
        self.channel = None
        # Its node may be gone: the next connect begins with another.
        self._next_url = (self._next_url + 1) % len(self.urls)
        if closed is not connection and connection is not None and not connection.is_closed:
            # Only the channel died (the broker refused a publish): a new one needs a new
            # reply consumer, which connect() sets up on a new connection; close this one.
            task = asyncio.get_running_loop().create_task(connection.close())
            self._closing_tasks.add(task)
            task.add_done_callback(self._closing_tasks.discard)
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

    async def _drop(self, channel: aio_pika.abc.AbstractChannel) -> None:
        """Close the connection of ``channel`` if it is still the one in use: the next
        call makes a new one (calls in flight on it fail with ConnectionLost)."""
        if channel is self.channel and self.connection is not None:
            await self.connection.close()

    async def close(self) -> None:
        connection, self.connection, self.channel = self.connection, None, None
        if connection is not None:
            await connection.close()
        if self._closing_tasks:
            await asyncio.gather(*self._closing_tasks, return_exceptions=True)

    async def publish(self, func: catalog.Function, body: bytes, message_id: str,
                      options: CallOptions, user_id: str | None = None) -> bytes | None:
        if not self.connected:
            await self.connect(timeout=options.timeout)
        channel = self.channel
        assert channel is not None
        loop = asyncio.get_running_loop()
        message = aio_pika.Message(
            body, content_type=envelope.CONTENT_TYPE, message_id=message_id,
            correlation_id=message_id, type=func.name, user_id=user_id,
            expiration=max(options.timeout, 0.001),
            reply_to=None if options.cast else REPLY_QUEUE,
            delivery_mode=aio_pika.DeliveryMode.NOT_PERSISTENT)
        future: asyncio.Future[bytes] | None = None
        if not options.cast:
            future = loop.create_future()
            self.pending[message_id] = _Pending(future, func.name)
        try:
            try:
                await self._publish_accepted(channel, message, options.timeout)
            except aiormq.exceptions.DeliveryError as exc:
                if _unroutable(exc):
                    raise exceptions.NoConductor(topic=self.topic, method=func.name) \
                        from None
                if _nacked(exc):
                    # Still refused: after its queue's leader node died, a RabbitMQ 3.10
                    # channel can go on refusing every publish although a new leader
                    # was elected; a new connection (the retry's) is not refused.
                    self.pending.pop(message_id, None)
                    await self._drop(channel)
                raise exceptions.ConnectionLost(method=func.name) from None
            except aiormq.exceptions.ChannelPreconditionFailed as exc:
                # RabbitMQ closes the channel of a publisher whose user_id is not its
                # login; say so rather than "connection lost", and do not retry.
                reason = _reply_text(exc)
                if user_id is not None and "user_id" in reason:
                    raise exceptions.UserIdRejected(method=func.name, user_id=user_id,
                                                    reason=reason) from None
                raise exceptions.ConnectionLost(method=func.name) from exc
            except (aiormq.exceptions.AMQPConnectionError, aiormq.exceptions.ChannelClosed,
                    aiormq.exceptions.ChannelInvalidStateError, ConnectionError) as exc:
                raise exceptions.ConnectionLost(method=func.name) from exc
            except TimeoutError:
                # No confirm in time (a quorum queue with no leader holds it): enqueued or
                # not, a retry with the same message id is safe.
                raise exceptions.RPCTimeout(timeout=options.timeout, method=func.name) \
                    from None
            if future is None:
                return None
            try:
                return await asyncio.wait_for(future, options.timeout)
            except TimeoutError:
                raise exceptions.RPCTimeout(timeout=options.timeout, method=func.name) \
                    from None
        finally:
            self.pending.pop(message_id, None)


    async def _publish_accepted(self, channel: aio_pika.abc.AbstractChannel,
                                message: aio_pika.Message, timeout: float) -> None:
        """Publish until the broker accepts, for at most NACK_PATIENCE seconds: a nack
        (a quorum queue still electing its leader, just after a conductor declared it or
        lost a node) means the message was not enqueued, so sending it again cannot run
        the call twice."""
        delay = 0.05
        deadline = time.monotonic() + min(timeout, NACK_PATIENCE)
        while True:
            try:
                await channel.default_exchange.publish(
                    message, routing_key=self.topic, mandatory=True, timeout=timeout)
                return
            except aiormq.exceptions.DeliveryError as exc:
                if not _nacked(exc) or time.monotonic() + delay > deadline:
                    raise
                log.info("the broker did not accept %s (nack); sending it again",
                         message.message_id)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)


def _nacked(exc: aiormq.exceptions.DeliveryError) -> bool:
    return isinstance(getattr(exc, "frame", None), pamqp.commands.Basic.Nack)


def _reply_text(exc: BaseException) -> str:
    return " ".join(str(a) for a in exc.args if isinstance(a, str)) or str(exc)


def _unroutable(exc: aiormq.exceptions.DeliveryError) -> bool:
    frame = getattr(exc, "frame", None)
    return getattr(frame, "reply_code", None) == 312 or "NO_ROUTE" in str(exc)


def broker_login(url: str) -> str | None:
    """The login the broker knows a connection to ``url`` by, or None if the URL does not
    show it (``?auth=external``: the broker takes the name from the client certificate)."""
    parsed = yarl.URL(url)
    if parsed.query.get("auth", "plain").upper() == "EXTERNAL":
        return None
    # aiormq logs in as guest when the URL names no user.
    return parsed.user or "guest"


def _user_id_for(urls: Sequence[str], user_id: str | None) -> str:
    if user_id is None:
        logins = {broker_login(url) for url in urls}
        if len(logins) > 1:
            raise ValueError("the broker URLs log in as different users: pass user_id=")
        user_id = logins.pop()
        if user_id is None:
            raise ValueError("the broker takes this connection's login from its client "
                             "certificate (auth=external): pass user_id= with that name")
    if not isinstance(user_id, str) or not user_id:
        raise ValueError(f"user_id must be a non-empty string, not {user_id!r}")
    return user_id


def _check_cap(version_cap: str | None) -> str | None:
    if version_cap is not None:
        catalog.parse_version(version_cap)  # ValueError for a malformed cap
    return version_cap


class ConductorClient(AsyncAPI):
    """``async with ConductorClient(url) as db: await db.instance_get(ctxt, 1)``.

    ``url`` may name several nodes of one RabbitMQ cluster (a list, or URLs separated by
    commas): the client connects to the first that answers and, when its node is lost,
    to the next.  A call in flight then fails with ConnectionLost unless ``retries``
    lets it be sent again (with the same message id: a write runs once).

    ``user_id`` is the AMQP ``user_id`` property of every message (the broker checks it
    against the connection's login): by default the URL's login, ``guest`` when the URL
    names none. ``version_cap`` (``"1.0"``) is the newest protocol version the conductors
    run; a function newer than it is refused locally with VersionCapExceeded.

    Over ``amqps://``: ``ca_file`` is the certificate authority the broker's certificate
    must chain to (default: the system's), ``cert_file`` and ``key_file`` the client's
    certificate, and ``external=True`` logs in with that certificate (RabbitMQ's EXTERNAL
    mechanism; pass ``user_id=`` the name the broker takes from it).  ``password``
    replaces the URL's, so it need not be written into the URL's text.
    """

    constraint = staticmethod(constraint)
    equal_any = staticmethod(equal_any)
    not_equal = staticmethod(not_equal)

    def __init__(self, url: str | Sequence[str] = DEFAULT_URL, topic: str = "conductor",
                 timeout: float = 60.0, retries: int = 0, *, user_id: str | None = None,
                 version_cap: str | None = None, password: str | None = None,
                 ca_file: str | None = None, cert_file: str | None = None,
                 key_file: str | None = None, external: bool = False) -> None:
        urls = [broker_url(one, password=password, ca_file=ca_file, cert_file=cert_file,
                           key_file=key_file, external=external) for one in broker_urls(url)]
        self.user_id = _user_id_for(urls, user_id)
        self.version_cap = _check_cap(version_cap)
        self._transport = _Transport(urls, topic)
        self._options = CallOptions(timeout=timeout, retries=retries)

    @property
    def topic(self) -> str:
        return self._transport.topic

    async def connect(self) -> Self:
        await self._transport.connect()
        return self

    async def close(self) -> None:
        await self._transport.close()

    async def __aenter__(self) -> Self:
        return await self.connect()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def options(self, *, timeout: float | None = None, retries: int | None = None,
                cast: bool | None = None, message_id: str | None = None) -> Self:
        """A view of this client whose calls use other options (same connection).

        ``message_id`` fixes the idempotency key: only for repeating one call by hand.
        """
        view = copy.copy(self)
        old = self._options
        view._options = replace(
            old, timeout=old.timeout if timeout is None else timeout,
            retries=old.retries if retries is None else retries,
            cast=old.cast if cast is None else cast,
            message_id=old.message_id if message_id is None else message_id)
        return view

    async def call(self, method: str, context: RequestContext, *args: Any,
                   **kwargs: Any) -> Any:
        """Call ``method`` by name with Nova's arguments (what the generated methods do).

        The arguments are bound against the catalog first: a wrong call raises TypeError,
        a function above ``version_cap`` VersionCapExceeded, and nothing is sent.
        """
        queued = bind(method, context, args, kwargs, self.version_cap)
        func = queued.function
        wire_context = _wire_context(queued.context)
        args_, kwargs_ = list(queued.args), queued.kwargs

        def request(attempt: int, timeout: float) -> envelope.Request:
            # "v" is the version the function appeared in, not the cap: a conductor that
            # knows the function can answer it, however old the rest of its catalog.
            return envelope.Request(func.name, args_, kwargs_, wire_context,
                                    version=func.version, deadline=time.time() + timeout,
                                    timeout=timeout, attempt=attempt)

        return await self._roundtrip(func, request)

    async def send_batch(self, calls: Sequence[QueuedCall]) -> list[Any]:
        """Send queued writes as one message, run in order in one transaction (what a job
        queue does at the end of its block); returns their results in order."""
        if not calls:
            return []
        for call in calls:
            if call.function.kind != "write":
                raise TypeError(f"{call.function.name} is a read: only writes can be queued")
            if self.version_cap is not None and not catalog.version_allows(
                    self.version_cap, call.function.version):
                raise exceptions.VersionCapExceeded(
                    method=call.function.name, version=call.function.version,
                    version_cap=self.version_cap)
        queued = [envelope.Call(c.function.name, list(c.args), c.kwargs,
                                _wire_context(c.context)) for c in calls]
        version = max((c.function.version for c in calls), key=catalog.parse_version)

        def request(attempt: int, timeout: float) -> envelope.Request:
            return envelope.Request(envelope.BATCH_METHOD, [], {}, queued[0].context or {},
                                    version=version, deadline=time.time() + timeout,
                                    calls=queued, timeout=timeout, attempt=attempt)

        results = await self._roundtrip(_BATCH, request)
        if not isinstance(results, list):
            raise exceptions.InvalidRequest(reason="a batch reply must be a list")
        return results

    async def _roundtrip(self, func: catalog.Function,
                         request: Callable[[int, float], envelope.Request]) -> Any:
        options = self._options
        message_id = options.message_id or uuid.uuid4().hex
        attempts = 1 + max(options.retries, 0)
        pause = RETRY_PAUSE
        for attempt in range(1, attempts + 1):
            body = request(attempt, options.timeout).encode()
            try:
                reply = await self._transport.publish(func, body, message_id, options,
                                                      user_id=self.user_id)
            except (exceptions.ConnectionLost, exceptions.RPCTimeout) as exc:
                if attempt >= attempts:
                    raise
                log.info("%s: %s; retrying (%d/%d) with the same message id", func.name,
                         type(exc).__name__, attempt, attempts - 1)
                # A cluster that lost a node takes seconds to elect the queue's new leader
                # and to get the conductor's consumer back: growing pauses spread the
                # retries over that time rather than spending them at once.
                await asyncio.sleep(pause * random.uniform(0.5, 1.0))
                pause = min(pause * 2, MAX_RETRY_PAUSE)
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
        return AsyncJobQueue(self, max_calls, self.version_cap)


_BATCH = catalog.Function(envelope.BATCH_METHOD, (), "write", "none")


def _wire_context(context: RequestContext) -> dict[str, Any]:
    # Every request carries a request_id, the key of the conductor's log lines about it:
    # RequestContext makes one at construction, but a caller may have cleared it.
    values = context.to_dict()
    if not values.get("request_id"):
        values["request_id"] = f"req-{uuid.uuid4()}"
    return values


class BatchSender(Protocol):
    async def send_batch(self, calls: Sequence[QueuedCall]) -> list[Any]: ...


class AsyncJobQueue(JobQueue):
    def __init__(self, client: BatchSender, max_calls: int,
                 version_cap: str | None = None) -> None:
        super().__init__(max_calls, version_cap)
        self._client = client

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is None and self.calls:
            self._finish(await self._client.send_batch(self.calls))
