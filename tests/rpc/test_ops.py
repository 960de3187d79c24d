"""`conductor status` and `conductor events tail`, as an operator runs them, on the real
broker and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import pytest

from conductor.db.engine import make_engine
from conductor.db.migrate import head_revision, upgrade
from conductor.dispatch import Dispatcher
from tests.api.test_database_snapshots import _values
from tests.conftest import _create_pg_database, _delete_queue, _drop_pg_database, _wipe
from tests.support import LocalClient


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "conductor.cli", *args],
                          capture_output=True, text=True, timeout=120)


async def _status(amqp_url: str, db_url: str, topic: str) -> dict[str, Any]:
    proc = await asyncio.to_thread(_cli, "status", "--json", "--amqp-url", amqp_url,
                                   "--db-url", db_url, "--topic", topic)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


@pytest.fixture
async def idle_db(pg_base_url: str, handlers: Any) -> AsyncIterator[tuple[str, Any]]:
    """A database of its own that no conductor publishes from, so its outbox stays."""
    name = f"conductor_ops_{uuid.uuid4().hex[:8]}"
    url = await _create_pg_database(pg_base_url, name)
    await asyncio.to_thread(upgrade, url)
    engine = make_engine(url)
    yield url, engine
    await engine.dispose()
    await _drop_pg_database(pg_base_url, name)


async def test_status_of_a_served_topic_after_calls(amqp_url, pg_url, conductor, rpc_client,
                                                    pg_engine, admin):
    await _wipe(pg_engine)
    for n in range(3):
        await rpc_client.database_snapshot_create(admin, _values(n))
    await conductor.outbox.flush()
    report = await _status(amqp_url, pg_url, conductor.settings.topic)
    assert report["queue"] == {"name": conductor.settings.topic, "messages": 0,
                               "consumers": 1}
    assert report["dead_letters"]["messages"] == 0
    assert report["outbox_backlog"] == 0
    assert report["schema"] == report["schema_head"] == head_revision()
    assert report["policy"] is None


async def test_status_counts_waiting_calls_and_unsent_events(amqp_url, idle_db, admin):
    from client import ConductorClient

    db_url, engine = idle_db
    topic = f"conductor-ops-{uuid.uuid4().hex[:8]}"
    connection = await aio_pika.connect(amqp_url)
    try:
        async with connection:
            channel = await connection.channel()
            await channel.declare_queue(topic, durable=True)
        # Casts nobody consumes yet wait in the queue.
        async with ConductorClient(amqp_url, topic=topic, timeout=60) as db:
            for _ in range(3):
                await db.options(cast=True).service_get_all(admin)
        # Committed by a conductor that has not published them yet.
        offline = LocalClient(Dispatcher(engine))
        for n in range(2):
            await offline.database_snapshot_create(admin, _values(n))
        report = await _status(amqp_url, db_url, topic)
        assert report["queue"] == {"name": topic, "messages": 3, "consumers": 0}
        assert report["dead_letters"] is None  # reported missing, not created
        assert report["outbox_backlog"] == 2
        text = await asyncio.to_thread(_cli, "status", "--amqp-url", amqp_url,
                                       "--db-url", db_url, "--topic", topic)
        assert text.returncode == 0, text.stderr
        assert f"topic queue: {topic}: 3 ready, 0 consumers" in text.stdout
        assert f"dead letters: no queue {topic}.dead" in text.stdout
        assert "outbox backlog: 2 unsent events" in text.stdout
        assert "policy: none" in text.stdout
    finally:
        await _delete_queue(amqp_url, topic)
    assert await _queue_exists(amqp_url, f"{topic}.dead") is False


async def test_status_says_what_it_cannot_reach(amqp_url):
    proc = await asyncio.to_thread(_cli, "status", "--amqp-url", amqp_url, "--db-url",
                                   "postgresql+asyncpg://nobody@127.0.0.1:1/none",
                                   "--topic", "conductor-ops-none")
    assert proc.returncode == 1
    assert "outbox backlog: unknown (" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr


async def _queue_exists(amqp_url: str, name: str) -> bool:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        try:
            await channel.declare_queue(name, passive=True)
        except aio_pika.exceptions.ChannelNotFoundEntity:
            return False
        return True


async def test_events_tail_prints_a_real_event_until_interrupted(amqp_url, rpc_client,
                                                                 pg_engine, admin):
    await _wipe(pg_engine)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "conductor.cli", "events", "tail", "database_snapshot.*",
        "--amqp-url", amqp_url, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        # It says when it is bound; an event published before that is not its to see.
        ready = await asyncio.wait_for(proc.stderr.readline(), 60)
        assert b"listening on conductor.events" in ready
        snap = await rpc_client.database_snapshot_create(admin, _values(7))
        # The exchange is shared: other snapshots' events may come first.
        while True:
            line = await asyncio.wait_for(proc.stdout.readline(), 60)
            assert line, (await proc.stderr.read()).decode()
            event = json.loads(line)
            if event["resource_id"] == snap["resource_id"]:
                break
        assert event["event"] == "database_snapshot.created"
        assert event["payload"]["snapshot_id"] == "rds:snap-7"
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        assert dt.datetime.fromisoformat(event["occurred_at"]) <= now  # naive UTC, as ISO
        proc.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(proc.wait(), 60) == 0
        assert b"Traceback" not in await proc.stderr.read()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
