"""A local three-node RabbitMQ cluster and a conductor on it (tests/cluster/nodes.py)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from conductor import broker
from tests.cluster.nodes import Cluster, missing


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    reason = missing()
    if reason is not None:
        pytest.skip(reason)
    nodes = Cluster()
    nodes.start()
    try:
        yield nodes
    finally:
        nodes.stop()


class ConductorProcess:
    """``conductor serve`` given every node's URL, as an operator would run it."""

    def __init__(self, cluster: Cluster, db_url: str, log: Path) -> None:
        self.cluster = cluster
        self.topic = f"conductor-cluster-{uuid.uuid4().hex[:8]}"
        self.log = log
        urls = [a for url in cluster.urls for a in ("--amqp-url", url)]
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "conductor.cli", "serve", *urls, "--db-url", db_url,
                 "--topic", self.topic, "--log-level", "INFO"],
                stdout=out, stderr=subprocess.STDOUT)

    async def wait_consuming(self, timeout: float = 30.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while await self.consumers() < 1:
            if self.proc.poll() is not None or loop.time() > deadline:
                raise AssertionError(f"the conductor did not start:\n{self.tail()}")
            await asyncio.sleep(0.2)

    async def consumers(self) -> int:
        connection = await broker.connect_once(self.cluster.urls)
        async with connection:
            channel = await connection.channel()
            try:
                queue = await channel.declare_queue(self.topic, passive=True)
            except Exception:
                return 0
            return queue.declaration_result.consumer_count or 0

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
async def cluster_conductor(cluster: Cluster, pg_url: str, tmp_path: Path
                            ) -> AsyncIterator[ConductorProcess]:
    running = ConductorProcess(cluster, pg_url, tmp_path / "conductor.log")
    try:
        await running.wait_consuming()
        yield running
    finally:
        running.stop()
