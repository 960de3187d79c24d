"""What an operator sees: metrics after a known mix of calls, health when the database or
the broker goes away, JSON log lines carrying the caller's request id."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from client import ConductorClient
from conductor.app import Conductor
from conductor.db.engine import make_engine
from conductor.db.migrate import upgrade
from conductor.settings import Settings
from schemas import exceptions
from schemas.context import RequestContext, get_admin_context
from tests.conftest import _create_pg_database, _delete_topic, _drop_pg_database
from tests.faults.conftest import cut_broker_connections

ADMIN = get_admin_context()


async def _get(port: int, path: str) -> tuple[int, str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, _, body = raw.decode().partition("\r\n\r\n")
    return int(head.split()[1]), body


def _sample(metrics: str, name: str, **labels: str) -> float:
    """The value of one sample of the Prometheus text format (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in metrics.splitlines():
        if line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        sample, _, label_text = key.partition("{")
        if sample == name and ",".join(sorted(label_text.rstrip("}").split(","))) \
                == wanted:
            return float(value)
    return 0.0


@pytest.fixture
async def own_database(pg_base_url: str) -> AsyncIterator[str]:
    """A database of this test's own, which it may make unreachable."""
    name = f"conductor_ops_{uuid.uuid4().hex[:8]}"
    url = await _create_pg_database(pg_base_url, name)
    await asyncio.to_thread(upgrade, url)
    yield url
    await _allow_connections(pg_base_url, name, True)
    await _drop_pg_database(pg_base_url, name)


async def _allow_connections(base_url: str, name: str, allow: bool) -> None:
    admin = make_engine(base_url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS '
                                    f'{"true" if allow else "false"}'))
            if not allow:
                await conn.execute(text("SELECT pg_terminate_backend(pid) FROM "
                                        "pg_stat_activity WHERE datname = :n"), {"n": name})
    finally:
        await admin.dispose()


@pytest.fixture
async def observed(amqp_url: str, own_database: str, handlers: Any
                   ) -> AsyncIterator[Conductor]:
    engine = make_engine(own_database, pool_size=4)
    topic = f"conductor-ops-{uuid.uuid4().hex[:8]}"
    running = Conductor(Settings(amqp_url=amqp_url, topic=topic, metrics_port=0), engine)
    await running.start()
    yield running
    await running.stop(grace=5)
    await engine.dispose()
    await _delete_topic(amqp_url, topic)


async def _until(port: int, path: str, status: int, timeout: float = 20) -> str:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        got, body = await _get(port, path)
        if got == status:
            return body
        assert loop.time() < deadline, f"{path} stayed {got}: {body}"
        await asyncio.sleep(0.1)


async def test_metrics_count_a_known_mix_of_calls(amqp_url, observed):
    port = observed.metrics_port
    async with ConductorClient(amqp_url, topic=observed.settings.topic, timeout=10) as db:
        created = [await db.service_create(ADMIN, {"host": f"m{i}"}) for i in range(3)]
        await db.service_get(ADMIN, created[0]["id"])
        for _ in range(2):
            with pytest.raises(exceptions.ServiceNotFound):
                await db.service_get(ADMIN, 10_000)
        with pytest.raises(exceptions.AdminRequired):
            await db.service_get_all(RequestContext("u", "p"))
    status, metrics = await _get(port, "/metrics")
    assert status == 200
    calls = "conductor_rpc_server_invocations_total"
    assert _sample(metrics, calls, method="service_create", outcome="ok") == 3
    assert _sample(metrics, calls, method="service_get", outcome="ok") == 1
    assert _sample(metrics, calls, method="service_get", outcome="ServiceNotFound") == 2
    assert _sample(metrics, calls, method="service_get_all", outcome="AdminRequired") == 1
    assert _sample(metrics, "conductor_rpc_server_processing_seconds_count",
                   method="service_create") == 3
    assert _sample(metrics, "conductor_rpc_server_in_flight") == 0
    assert _sample(metrics, "conductor_outbox_backlog") == 0
    assert _sample(metrics, "conductor_dead_letter_messages") == 0
    assert "conductor_db_pool_in_use" in metrics
    assert (await _get(port, "/nothing"))[0] == 404


async def test_ready_follows_the_database_and_live_follows_the_consumer(
        amqp_url, pg_base_url, own_database, observed):
    port = observed.metrics_port
    assert await _get(port, "/healthz") == (200, "ok\n")
    assert await _get(port, "/readyz") == (200, "ok\n")
    name = make_url(own_database).database
    assert name is not None
    await _allow_connections(pg_base_url, name, False)
    try:
        body = await _until(port, "/readyz", 503)
        assert "database" in body
        assert (await _get(port, "/healthz"))[0] == 200  # still consuming
    finally:
        await _allow_connections(pg_base_url, name, True)
    await _until(port, "/readyz", 200)
    # The broker connection cut: not live until the robust connection is back.
    assert await asyncio.to_thread(cut_broker_connections, observed.settings.topic) >= 1
    assert (await _until(port, "/readyz", 503)).strip()  # with its reason
    await _until(port, "/readyz", 200, timeout=30)
    await _until(port, "/healthz", 200, timeout=30)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_json_log_line_of_a_failed_call_carries_its_request_id(conductors):
    proc = await conductors.start("--log-format", "json", "--slow-call-ms", "60000")
    request_id = f"req-{uuid.uuid4()}"
    context = RequestContext("user1", "project1", request_id=request_id)
    async with ConductorClient(conductors.amqp_url, topic=conductors.topic, timeout=10) as db:
        with pytest.raises(exceptions.InstanceNotFound):
            await db.instance_get_by_uuid(context, str(uuid.uuid4()))
        await db.service_get_all(ADMIN)  # a quick success: no line
    log = await conductors.stop(proc)
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert lines, log
    mine = [entry for entry in lines if entry.get("request_id") == request_id]
    failed = [entry for entry in mine if entry.get("outcome") == "InstanceNotFound"]
    assert len(failed) == 1, mine
    entry = failed[0]
    assert entry["function"] == "instance_get_by_uuid"
    assert entry["broker_user"] == "guest"
    assert entry["duration_ms"] >= 0
    assert not [e for e in lines if e.get("function") == "service_get_all"]


async def test_metrics_of_each_worker_on_its_own_port(conductors):
    port = _free_port()
    proc = subprocess.Popen(conductors.command("--workers", "2", "--metrics-port", str(port)),
                            stderr=subprocess.DEVNULL, start_new_session=True)
    conductors.procs.append(proc)
    try:
        await conductors.wait_consumers(2)
        for worker in range(2):
            await _until(port + worker, "/healthz", 200)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        await asyncio.to_thread(proc.wait, 30)
