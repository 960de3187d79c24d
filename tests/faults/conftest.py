import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import aio_pika
import pytest

from tests.conftest import _delete_topic


class Conductors:
    """Conductor processes on one topic, started and killed by a test."""

    def __init__(self, amqp_url: str, db_url: str) -> None:
        self.amqp_url = amqp_url
        self.db_url = db_url
        self.topic = f"conductor-fault-{uuid.uuid4().hex[:8]}"
        self.procs: list[subprocess.Popen[bytes]] = []

    def command(self, *extra: str, module: str = "conductor.cli") -> list[str]:
        return [sys.executable, "-m", module, "serve", "--amqp-url", self.amqp_url,
                "--db-url", self.db_url, "--topic", self.topic, "--log-level", "INFO",
                *extra]

    async def start(self, *extra: str, crash_on: str | None = None, crash_at: str = "reply",
                    wait: bool = True) -> subprocess.Popen[bytes]:
        env = dict(os.environ)
        module = "conductor.cli"
        if crash_on:
            env["CRASH_ON_METHOD"] = crash_on
            env["CRASH_AT"] = crash_at
            module = "tests.faults.crashing_conductor"
        before = await self.consumers() if wait else 0
        proc = subprocess.Popen(self.command(*extra, module=module), env=env,
                                stderr=subprocess.PIPE)
        self.procs.append(proc)
        if wait:
            try:
                await self.wait_consumers(before + 1, proc=proc)
            except TimeoutError:
                proc.kill()
                raise AssertionError(f"conductor did not start: {proc.communicate()[1]!r}") \
                    from None
        return proc

    async def stop(self, proc: subprocess.Popen[bytes]) -> str:
        """Terminate one conductor; its standard error (the log)."""
        proc.terminate()
        _, err = await asyncio.to_thread(proc.communicate, None, 30)
        return err.decode(errors="replace")

    async def consumers(self) -> int:
        connection = await aio_pika.connect(self.amqp_url)
        async with connection:
            channel = await connection.channel()
            try:
                queue = await channel.declare_queue(self.topic, passive=True)
            except aio_pika.exceptions.ChannelClosed:
                return 0
            return queue.declaration_result.consumer_count or 0

    async def wait_consumers(self, count: int, timeout: float = 60,
                             proc: subprocess.Popen[bytes] | None = None) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while await self.consumers() < count:
            if loop.time() > deadline or (proc is not None and proc.poll() is not None):
                raise TimeoutError(f"fewer than {count} conductors consume {self.topic}")
            await asyncio.sleep(0.1)

    async def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                await asyncio.to_thread(proc.wait, 15)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture
async def conductors(amqp_url: str, pg_url: str, pg_engine: Any
                     ) -> AsyncIterator[Conductors]:
    from tests.conftest import _wipe

    await _wipe(pg_engine)
    group = Conductors(amqp_url, pg_url)
    yield group
    await group.stop_all()
    await _delete_topic(amqp_url, group.topic)


def cut_broker_connections(topic: str) -> int:
    """Close every broker connection of this topic's conductors and clients.

    Only this test's connections: others on the same broker (parallel test runs) live on.
    """
    listing = subprocess.run(
        ["rabbitmqctl", "list_connections", "pid", "client_properties", "-q",
         "--no-table-headers"], check=True, capture_output=True, text=True, timeout=60)
    closed = 0
    for line in listing.stdout.splitlines():
        pid, _, props = line.partition("\t")
        if f'{{"connection_name","conductor:{topic}:' in props or \
                f'{{"connection_name","client:{topic}:' in props:
            subprocess.run(["rabbitmqctl", "close_connection", pid.strip(), "fault test"],
                           check=True, capture_output=True, timeout=60)
            closed += 1
    return closed


Factory = Callable[..., Any]


class RawCaller:
    """Publishes what a stranger on the bus would, and collects replies by correlation id."""

    def __init__(self, amqp_url: str) -> None:
        self.amqp_url = amqp_url
        self.replies: dict[str, list[Any]] = {}
        self._connection: aio_pika.abc.AbstractConnection | None = None
        self._channel: aio_pika.abc.AbstractChannel | None = None

    async def __aenter__(self) -> "RawCaller":
        self._connection = await aio_pika.connect(self.amqp_url)
        self._channel = await self._connection.channel()
        queue = await self._channel.get_queue("amq.rabbitmq.reply-to", ensure=False)
        await queue.consume(self._on_reply, no_ack=True)
        return self

    async def __aexit__(self, *_: Any) -> None:
        assert self._connection is not None
        await self._connection.close()

    async def _on_reply(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        from schemas import codec

        self.replies.setdefault(message.correlation_id or "", []).append(
            codec.unpackb(message.body))

    async def publish(self, topic: str, body: bytes, *, reply: bool = True,
                      **properties: Any) -> str:
        """Publish ``body`` to ``topic``; the correlation id its replies are filed under."""
        assert self._channel is not None
        correlation_id = uuid.uuid4().hex
        properties.setdefault("message_id", uuid.uuid4().hex)
        if reply:
            properties.setdefault("reply_to", "amq.rabbitmq.reply-to")
        await self._channel.default_exchange.publish(
            aio_pika.Message(body, correlation_id=correlation_id, **properties),
            routing_key=topic)
        return correlation_id

    async def reply(self, correlation_id: str, timeout: float = 30) -> Any:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.replies.get(correlation_id):
            if loop.time() > deadline:
                raise TimeoutError(f"no reply to {correlation_id}")
            await asyncio.sleep(0.05)
        return self.replies[correlation_id][0]


def request(method: str, *args: Any, timeout: float = 60, **kwargs: Any) -> bytes:
    """A well-formed request body, as the client would encode it (admin context)."""
    from schemas import envelope
    from schemas.context import get_admin_context

    return envelope.Request(method, list(args), kwargs, get_admin_context().to_dict(),
                            timeout=timeout).encode()


def served_and_dropped(log: str) -> tuple[int, int]:
    """What a conductor's last log line says it served and dropped."""
    tail = log.split("stopped: served ")[-1]
    served, _, rest = tail.partition(" calls, dropped ")
    return int(served), int(rest.split()[0])
