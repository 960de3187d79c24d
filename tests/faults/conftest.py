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

    async def start(self, *extra: str, crash_on: str | None = None,
                    wait: bool = True) -> subprocess.Popen[bytes]:
        env = dict(os.environ)
        module = "conductor.cli"
        if crash_on:
            env["CRASH_ON_METHOD"] = crash_on
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
