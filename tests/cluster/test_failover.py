"""Losing a broker node loses nothing: ``kill -9`` of the node leading the topic queue
while ten callers write, through the real path (client -> cluster -> conductor ->
PostgreSQL), and every write is in the database exactly once.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

import pytest
from sqlalchemy import text

from client import ConductorClient
from schemas.context import get_admin_context
from tests.cluster.conftest import ConductorProcess
from tests.cluster.nodes import Cluster

pytestmark = pytest.mark.slow

CALLERS = 10
WRITES = 100
KILL_AFTER = 300  # writes answered before the leader is killed


class _Retries(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "retrying" in record.getMessage():
            self.count += 1


async def test_kill_9_of_the_queue_leader_loses_and_duplicates_nothing(
        cluster: Cluster, cluster_conductor: ConductorProcess, pg_engine: Any) -> None:
    topic = cluster_conductor.topic
    leader = cluster.leader(topic)
    project = f"cluster-{uuid.uuid4().hex[:8]}"
    keys = [[str(uuid.uuid4()) for _ in range(WRITES)] for _ in range(CALLERS)]
    answered = 0
    killed = asyncio.Event()
    killed_at = 0.0

    async def caller(i: int) -> int:
        nonlocal answered, killed_at
        # Each caller starts on a different node, as callers spread over a cluster would.
        urls = cluster.urls[i % 3:] + cluster.urls[:i % 3]
        async with ConductorClient(urls, topic=topic, timeout=10, retries=8) as db:
            ctxt = get_admin_context()
            for key in keys[i]:
                row = await db.instance_create(ctxt, {"uuid": key, "project_id": project})
                assert row["uuid"] == key
                answered += 1
                if answered == KILL_AFTER:
                    cluster.kill(leader)
                    killed_at = time.monotonic()
                    killed.set()
        return i

    retries = _Retries()
    client_log = logging.getLogger("client.core")
    level = client_log.level
    client_log.addHandler(retries)
    client_log.setLevel(logging.INFO)  # where the client says it retries
    started = time.monotonic()
    try:
        results = await asyncio.wait_for(
            asyncio.gather(*(caller(i) for i in range(CALLERS)), return_exceptions=True),
            timeout=120)
    finally:
        client_log.removeHandler(retries)
        client_log.setLevel(level)
    finished = time.monotonic()
    failures = [r for r in results if isinstance(r, BaseException)]
    assert not failures, f"callers failed: {failures!r}\n{cluster_conductor.tail()}"
    assert killed.is_set()
    assert not leader.alive()
    assert cluster_conductor.proc.poll() is None, "the conductor exited"

    async with pg_engine.connect() as conn:
        rows = (await conn.execute(
            text("SELECT uuid, count(*) FROM instances WHERE project_id = :p GROUP BY uuid"),
            {"p": project})).all()
    stored = dict((key, n) for key, n in rows)
    wanted = {key for per_caller in keys for key in per_caller}
    lost = wanted - set(stored)
    duplicated = {key: n for key, n in stored.items() if n > 1}
    assert not lost, f"{len(lost)} writes lost"
    assert not duplicated, f"{len(duplicated)} writes stored twice or more"
    assert set(stored) == wanted
    print(f"\n{CALLERS * WRITES} writes in {finished - started:.1f} s; {leader.name} "
          f"killed after {KILL_AFTER}, the rest done {finished - killed_at:.1f} s later; "
          f"{retries.count} retries")
