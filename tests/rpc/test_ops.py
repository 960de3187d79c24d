"""`conductor status` and `conductor events tail`, as an operator runs them, on the real
broker and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
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


@contextlib.asynccontextmanager
async def _tail(amqp_url: str, pattern: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """`conductor events tail PATTERN`, bound and listening; interrupted at the end, which
    it must survive cleanly."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "conductor.cli", "events", "tail", pattern,
        "--amqp-url", amqp_url, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        # It says when it is bound; an event published before that is not its to see.
        ready = await asyncio.wait_for(proc.stderr.readline(), 60)
        assert b"listening on conductor.events" in ready
        yield proc
        proc.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(proc.wait(), 60) == 0
        assert b"Traceback" not in await proc.stderr.read()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def _printed(proc: asyncio.subprocess.Process, resource_id: str,
                   seen: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The next line printed about ``resource_id`` (the exchange is shared: other
    conductors' events may come first); every line read is added to ``seen``."""
    assert proc.stdout is not None and proc.stderr is not None
    while True:
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        assert line, (await proc.stderr.read()).decode()
        event: dict[str, Any] = json.loads(line)
        if seen is not None:
            seen.append(event)
        if event["resource_id"] == resource_id:
            return event


async def test_events_tail_prints_a_real_event_until_interrupted(amqp_url, rpc_client,
                                                                 pg_engine, admin):
    await _wipe(pg_engine)
    async with _tail(amqp_url, "database_snapshot.*") as proc:
        snap = await rpc_client.database_snapshot_create(admin, _values(7))
        event = await _printed(proc, snap["resource_id"])
        assert event["event"] == "database_snapshot.created"
        assert event["payload"]["snapshot_id"] == "rds:snap-7"
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        assert dt.datetime.fromisoformat(event["occurred_at"]) <= now  # naive UTC, as ISO


async def test_events_tail_prints_instance_events(amqp_url, rpc_client, admin):
    async with _tail(amqp_url, "instance.*") as proc:
        inst = await rpc_client.instance_create(admin, {"project_id": "p-tail",
                                                        "host": "node9"})
        await rpc_client.instance_update(admin, inst["uuid"], {"vm_state": "active"})
        # Another family's events are not printed in between.
        await rpc_client.database_snapshot_create(
            admin, _values(snapshot_id=f"rds:snap-{uuid.uuid4().hex}"))
        await rpc_client.instance_destroy(admin, inst["uuid"])
        seen: list[dict[str, Any]] = []
        printed = [await _printed(proc, inst["uuid"], seen) for _ in range(3)]
    assert all(e["event"].startswith("instance.") for e in seen)
    assert [e["event"] for e in printed] == ["instance.created", "instance.updated",
                                            "instance.destroyed"]
    assert printed[0]["payload"] == {"uuid": inst["uuid"], "project_id": "p-tail",
                                     "user_id": None, "host": "node9", "vm_state": None,
                                     "task_state": None}
    assert printed[1]["payload"]["changes"] == {"vm_state": "active"}
