"""Fault injection through the real broker and database: nothing lost, nothing twice."""

import asyncio
import collections
import uuid

import pytest
from sqlalchemy import func, select, text

from client import ConductorClient
from conductor.db.models import Service
from schemas import exceptions
from schemas.context import get_admin_context
from tests.faults.conftest import cut_broker_connections

ADMIN = get_admin_context()
services = Service.__table__


async def _count_hosts(engine, prefix):
    async with engine.connect() as conn:
        rows = await conn.execute(select(services.c.host, func.count())
                                  .where(services.c.host.like(f"{prefix}%"))
                                  .group_by(services.c.host))
        return dict(rows.all())


async def test_killed_after_commit_is_redelivered_and_applied_once(conductors, pg_engine):
    crasher = await conductors.start(crash_on="service_create")
    async with ConductorClient(conductors.amqp_url, topic=conductors.topic, timeout=30) as db:
        once = db.options(message_id=uuid.uuid4().hex)
        call = asyncio.ensure_future(once.service_create(ADMIN, {"host": "once-only"}))
        assert await asyncio.to_thread(crasher.wait, 20) == 137
        assert await _count_hosts(pg_engine, "once-only") == {"once-only": 1}
        # A second conductor gets the unacked message and answers it from the reply store.
        await conductors.start()
        first = await asyncio.wait_for(call, 20)
        assert first["host"] == "once-only"
        # The caller's retry with the same message id gets the original reply.
        again = await once.service_create(ADMIN, {"host": "once-only"})
        assert again == first
    assert await _count_hosts(pg_engine, "once-only") == {"once-only": 1}


async def test_retry_after_lost_reply_does_not_apply_twice(conductors, pg_engine):
    crasher = await conductors.start(crash_on="service_create")
    await conductors.start(wait=False)
    async with ConductorClient(conductors.amqp_url, topic=conductors.topic, timeout=3,
                               retries=3) as db:
        results = []
        for i in range(6):
            results.append(await db.service_create(ADMIN, {"host": f"retry-{i}"}))
        assert crasher.poll() == 137
    assert sorted(r["host"] for r in results) == [f"retry-{i}" for i in range(6)]
    counts = await _count_hosts(pg_engine, "retry-")
    assert counts == {f"retry-{i}": 1 for i in range(6)}


async def _stream(db, caller, n, log):
    for i in range(n):
        host = f"cut-{caller}-{i}"
        try:
            service = await db.service_create(ADMIN, {"host": host})
            assert service["host"] == host
            got = await db.service_get(ADMIN, service["id"])
            assert got["host"] == host
            log["ok"] += 1
        except (exceptions.ConnectionLost, exceptions.RPCTimeout, exceptions.NoConductor):
            log["failed"] += 1


@pytest.mark.parametrize("retries", [0, 5])
async def test_broker_connections_cut_mid_stream(conductors, pg_engine, retries):
    await conductors.start()
    log = collections.Counter()
    clients = [await ConductorClient(conductors.amqp_url, topic=conductors.topic, timeout=5,
                                     retries=retries).connect() for _ in range(10)]
    try:
        stream = asyncio.gather(*[_stream(db, c, 50, log) for c, db in enumerate(clients)])
        await asyncio.sleep(1.0)
        assert await asyncio.to_thread(cut_broker_connections, conductors.topic) >= 11
        await asyncio.wait_for(stream, 240)
    finally:
        for db in clients:
            await db.close()
    assert log["ok"] + log["failed"] == 500
    counts = await _count_hosts(pg_engine, "cut-")
    assert all(n == 1 for n in counts.values()), "a write was applied twice"
    if retries:
        assert log == {"ok": 500}
        assert len(counts) == 500
    else:
        assert len(counts) >= log["ok"]
    # The conductor came back by itself.
    async with ConductorClient(conductors.amqp_url, topic=conductors.topic, timeout=10) as db:
        assert len(await db.service_get_all(ADMIN)) == len(counts)


async def test_database_connections_terminated_mid_stream(conductors, pg_engine, pg_url):
    await conductors.start()
    database = pg_engine.url.database
    seen = collections.Counter()
    async with ConductorClient(conductors.amqp_url, topic=conductors.topic, timeout=20) as db:
        async def caller(c):
            for i in range(40):
                try:
                    await db.service_create(ADMIN, {"host": f"pg-{c}-{i}"})
                    seen["ok"] += 1
                except exceptions.DBConnectionError:
                    seen["db"] += 1
                await asyncio.sleep(0.01)

        stream = asyncio.gather(*[caller(c) for c in range(5)])
        await asyncio.sleep(0.3)
        async with pg_engine.connect() as conn:
            killed = await conn.execute(text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = :db AND pid <> pg_backend_pid() "
                "AND application_name NOT LIKE 'pytest%'"), {"db": database})
            assert killed.scalar() >= 1
        await stream
        assert seen["ok"] + seen["db"] == 200
        # Later calls succeed without restarting the conductor.
        for i in range(20):
            await db.service_create(ADMIN, {"host": f"after-{i}"})
    assert len(await _count_hosts(pg_engine, "after-")) == 20


async def test_call_expiring_while_conductors_are_busy_is_not_executed(conductors, pg_engine):
    await conductors.start("--pool-size", "1", "--prefetch", "10")
    async with ConductorClient(conductors.amqp_url, topic=conductors.topic, timeout=30) as db:
        service = await db.service_create(ADMIN, {"host": "busy"})
        async with pg_engine.connect() as locker:
            await locker.execute(text("LOCK TABLE services IN ACCESS EXCLUSIVE MODE"))
            blocked = [asyncio.ensure_future(db.service_update(ADMIN, service["id"],
                                                               {"report_count": i}))
                       for i in range(2)]
            await asyncio.sleep(0.3)
            with pytest.raises(exceptions.RPCTimeout):
                await db.options(timeout=1).service_create(ADMIN, {"host": "stale"})
            await asyncio.sleep(2)
            await locker.rollback()
        assert await asyncio.gather(*blocked) == [None, None]
        await asyncio.sleep(0.5)
    assert await _count_hosts(pg_engine, "stale") == {}


async def test_two_conductors_share_the_load(conductors, pg_engine):
    first = await conductors.start()
    second = await conductors.start()
    async with ConductorClient(conductors.amqp_url, topic=conductors.topic, timeout=30) as db:
        made = await asyncio.gather(*[db.service_create(ADMIN, {"host": f"share-{i}",
                                                                "report_count": i})
                                      for i in range(100)])
        ids = [s["id"] for s in made]
        got = await asyncio.gather(*[db.service_get(ADMIN, ids[i % 100])
                                     for i in range(2000)])
    assert all(g["report_count"] == i % 100 for i, g in enumerate(got))
    served = await _served_counts(pg_engine, conductors, [first, second])
    assert all(n > 0 for n in served), served


async def _served_counts(pg_engine, conductors, procs):
    # Each conductor logs nothing per call; ask PostgreSQL which backends did the work.
    del pg_engine
    counts = []
    for proc in procs:
        proc.terminate()
        _, err = await asyncio.to_thread(proc.communicate, None, 20)
        counts.append(int(err.decode().split("served ")[-1].split(" ")[0])
                      if b"served " in err else 0)
    return counts


async def test_serve_workers_starts_competing_processes(conductors):
    parent = await conductors.start("--workers", "2", wait=False)
    await conductors.wait_consumers(2)
    async with ConductorClient(conductors.amqp_url, topic=conductors.topic, timeout=30) as db:
        made = await asyncio.gather(*[db.service_create(ADMIN, {"host": f"w-{i}"})
                                      for i in range(50)])
    assert sorted(s["host"] for s in made) == sorted(f"w-{i}" for i in range(50))
    parent.terminate()
    assert await asyncio.to_thread(parent.wait, 30) == 0
    assert await conductors.consumers() == 0


async def test_calls_in_flight_fail_promptly_when_the_connection_drops(conductors, pg_engine):
    await conductors.start()
    async with ConductorClient(conductors.amqp_url, topic=conductors.topic, timeout=60) as db:
        service = await db.service_create(ADMIN, {"host": "inflight"})
        async with pg_engine.connect() as locker:
            await locker.execute(text("LOCK TABLE services IN ACCESS EXCLUSIVE MODE"))
            pending = asyncio.ensure_future(db.service_get(ADMIN, service["id"]))
            await asyncio.sleep(0.3)
            loop = asyncio.get_running_loop()
            started = loop.time()
            await asyncio.to_thread(cut_broker_connections, conductors.topic)
            with pytest.raises(exceptions.ConnectionLost):
                await pending
            assert loop.time() - started < 10  # the call's timeout is 60 s
            await locker.rollback()
        # The same client works again once it has reconnected.
        for _ in range(100):
            try:
                assert (await db.service_get(ADMIN, service["id"]))["host"] == "inflight"
                break
            except (exceptions.ConnectionLost, exceptions.NoConductor):
                await asyncio.sleep(0.2)
        else:
            pytest.fail("the client never recovered")
