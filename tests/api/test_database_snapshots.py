"""Database snapshots: strict values, provider keys, paging, and lifecycle events."""

import asyncio
import datetime as dt

import aio_pika
import pytest

from conductor.dispatch import Dispatcher
from schemas import codec, exceptions
from schemas.context import get_admin_context
from tests.support import LocalClient

T0 = dt.datetime(2026, 1, 1, 12, 0, 0)


def _values(n=1, **extra):
    values = {"organization_service_id": 7, "region_name": "us-east-1",
              "snapshot_id": f"rds:snap-{n}", "name": f"snap {n}", "engine": "postgres",
              "instance_resource_id": "dbinst-1", "create_time": T0 + dt.timedelta(hours=n),
              "port": 5432, "size": 20, "progress": 100, "state": "available"}
    values.update(extra)
    return values


async def test_create_get_and_provider_lookup(db, admin, user):
    snap = await db.database_snapshot_create(admin, _values())
    assert snap["resource_id"].startswith("dbsnap-") and len(snap["resource_id"]) == 23
    assert snap["snapshot_type"] == "manual" and snap["public"] is False
    assert await db.database_snapshot_get(user, snap["resource_id"]) == snap
    assert (await db.database_snapshot_get_by_provider_id(
        user, 7, "us-east-1", "rds:snap-1"))["resource_id"] == snap["resource_id"]
    assert await db.database_snapshot_creation_timestamp(user, snap["resource_id"]) == \
        T0 + dt.timedelta(hours=1)
    with pytest.raises(exceptions.DatabaseSnapshotNotFound) as info:
        await db.database_snapshot_get(user, "dbsnap-0000000000000000")
    assert info.value.kwargs == {"resource_id": "dbsnap-0000000000000000", "code": 404}
    with pytest.raises(exceptions.DatabaseSnapshotExists) as info:
        await db.database_snapshot_create(admin, _values(name="again"))
    assert info.value.kwargs["snapshot_id"] == "rds:snap-1"
    with pytest.raises(exceptions.AdminRequired):
        await db.database_snapshot_create(user, _values(2))


@pytest.mark.parametrize("values, column", [
    ({"resource_id": "dbsnap-1234567890abcdef"}, "resource_id"), ({"id": 5}, "id"),
    ({"colour": "red"}, "colour"), ({"port": 0}, "port"), ({"port": 70000}, "port"),
    ({"size": -1}, "size"), ({"progress": 101}, "progress"),
    ({"snapshot_type": "weekly"}, "snapshot_type"), ({"region_name": "r" * 65}, "region_name"),
    ({"snapshot_id": None}, "snapshot_id"), ({"public": "yes"}, "public"),
])
async def test_bad_values_are_refused_before_anything_is_written(db, admin, values, column):
    with pytest.raises(exceptions.InvalidInput, match=column):
        await db.database_snapshot_create(admin, _values(**values))
    assert await db.database_snapshot_get_all(admin) == []


async def test_missing_required_column(db, admin):
    values = _values()
    del values["region_name"]
    with pytest.raises(exceptions.InvalidInput, match="region_name"):
        await db.database_snapshot_create(admin, values)


async def test_get_all_filters_sorting_and_paging(db, admin):
    made = [await db.database_snapshot_create(admin, _values(n)) for n in range(1, 5)]
    await db.database_snapshot_create(admin, _values(9, create_time=None, engine="mysql"))
    everything = await db.database_snapshot_get_all(admin)
    # newest first, NULL create_time last
    assert [s["snapshot_id"] for s in everything] == \
        ["rds:snap-4", "rds:snap-3", "rds:snap-2", "rds:snap-1", "rds:snap-9"]
    asc = await db.database_snapshot_get_all(admin, sort_dir="asc")
    assert [s["snapshot_id"] for s in asc][-1] == "rds:snap-9"
    assert [s["snapshot_id"] for s in asc][:2] == ["rds:snap-1", "rds:snap-2"]
    pages, marker = [], None
    while True:
        page = await db.database_snapshot_get_all(admin, limit=2, marker=marker)
        if not page:
            break
        pages.extend(page)
        marker = page[-1]["resource_id"]
    assert pages == everything
    assert [s["engine"] for s in await db.database_snapshot_get_all(
        admin, {"engine": "mysql"})] == ["mysql"]
    assert len(await db.database_snapshot_get_all(
        admin, {"snapshot_id": ["rds:snap-1", "rds:snap-3"]})) == 2
    window = await db.database_snapshot_get_all(
        admin, {"create_time_after": T0 + dt.timedelta(hours=2),
                "create_time_before": T0 + dt.timedelta(hours=4)})
    assert [s["snapshot_id"] for s in window] == ["rds:snap-3", "rds:snap-2"]
    by_name = await db.database_snapshot_get_all(admin, sort_key="name", sort_dir="asc")
    assert by_name[0]["name"] == "snap 1"
    with pytest.raises(exceptions.MarkerNotFound):
        await db.database_snapshot_get_all(admin, marker="dbsnap-ffffffffffffffff")
    with pytest.raises(exceptions.InvalidInput, match="colour"):
        await db.database_snapshot_get_all(admin, {"colour": "red"})
    with pytest.raises(exceptions.InvalidInput, match="sort"):
        await db.database_snapshot_get_all(admin, sort_key="nope")
    with pytest.raises(exceptions.InvalidInput, match="sort_dir"):
        await db.database_snapshot_get_all(admin, sort_dir="sideways")
    by_instance = await db.database_snapshot_get_all_by_instance(admin, "dbinst-1")
    assert [s["snapshot_id"] for s in by_instance] == [s["snapshot_id"] for s in everything]
    assert made


async def test_update_destroy_and_deleted_rows(db, admin):
    snap = await db.database_snapshot_create(admin, _values())
    rid = snap["resource_id"]
    updated = await db.database_snapshot_update(admin, rid, {"progress": 50,
                                                             "state": "creating"})
    assert updated["progress"] == 50 and updated["updated_at"] is not None
    for key, value in (("resource_id", "dbsnap-1111111111111111"), ("snapshot_id", "x"),
                       ("region_name", "eu"), ("organization_service_id", 8)):
        with pytest.raises(exceptions.InvalidInput, match=key):
            await db.database_snapshot_update(admin, rid, {key: value})
    assert await db.database_snapshot_destroy(admin, rid) is None
    with pytest.raises(exceptions.DatabaseSnapshotNotFound):
        await db.database_snapshot_get(admin, rid)
    gone = await db.database_snapshot_get(get_admin_context("yes"), rid)
    assert gone["deleted"] is True
    for call in (db.database_snapshot_destroy(admin, rid),
                 db.database_snapshot_update(get_admin_context("yes"), rid, {"size": 1})):
        with pytest.raises(exceptions.DatabaseSnapshotNotFound):
            await call
    # The provider key is free again once the old row is deleted.
    again = await db.database_snapshot_create(admin, _values())
    assert again["resource_id"] != rid
    assert [s["resource_id"] for s in await db.database_snapshot_get_all(
        get_admin_context("only"))] == [rid]


async def test_concurrent_creates_of_one_provider_snapshot(rpc_client, pg_engine, admin):
    from tests.conftest import _wipe

    await _wipe(pg_engine)
    results = await asyncio.gather(*[rpc_client.database_snapshot_create(admin, _values())
                                     for _ in range(10)], return_exceptions=True)
    assert sum(isinstance(r, dict) for r in results) == 1
    assert all(isinstance(r, (dict, exceptions.DatabaseSnapshotExists)) for r in results)


async def _listen(amqp_url, pattern="database_snapshot.#"):
    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel()
    exchange = await channel.declare_exchange("conductor.events",
                                              aio_pika.ExchangeType.TOPIC, durable=True)
    queue = await channel.declare_queue(exclusive=True)
    await queue.bind(exchange, pattern)
    return connection, queue


async def _collect(queue, resource_ids, count, timeout=10.0):
    got = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while len(got) < count and loop.time() < deadline:
        try:
            message = await queue.get(timeout=0.2, fail=False)
        except TimeoutError:
            message = None
        if message is None:
            await asyncio.sleep(0.05)
            continue
        await message.ack()
        body = codec.unpackb(message.body)
        if body["resource_id"] in resource_ids:
            assert message.message_id == body["event_id"] and message.type == body["event"]
            got.append(body)
    return got


async def test_lifecycle_events_are_published_after_commit(amqp_url, rpc_client, pg_engine,
                                                          admin):
    from tests.conftest import _wipe

    await _wipe(pg_engine)
    connection, queue = await _listen(amqp_url)
    async with connection:
        snap = await rpc_client.database_snapshot_create(admin, _values())
        rid = snap["resource_id"]
        await rpc_client.database_snapshot_update(admin, rid, {"progress": 40})
        await rpc_client.database_snapshot_update(admin, rid, {"progress": 40})  # no change
        await rpc_client.database_snapshot_destroy(admin, rid)
        # A rolled-back change publishes nothing.
        with pytest.raises(exceptions.DatabaseSnapshotNotFound):
            async with rpc_client.job_queue() as q:
                q.database_snapshot_create(admin, _values(2))
                q.database_snapshot_destroy(admin, "dbsnap-0000000000000000")
        got = await _collect(queue, {rid}, 3)
        assert [e["event"] for e in got] == ["database_snapshot.created",
                                            "database_snapshot.modified",
                                            "database_snapshot.destroyed"]
        assert all(e["resource_type"] == "databasesnapshot" for e in got)
        assert got[0]["payload"]["snapshot_id"] == "rds:snap-1"
        assert got[1]["payload"]["changes"] == {"progress": [100, 40]}
        assert got[2]["payload"]["deleted"] is True
        assert len({e["event_id"] for e in got}) == 3
        assert await rpc_client.database_snapshot_get_all(admin, {"snapshot_id": "rds:snap-2"}) \
            == []


async def test_events_left_in_the_outbox_are_published_by_the_next_conductor(
        amqp_url, pg_engine, conductor, handlers, admin):
    from tests.conftest import _wipe

    await _wipe(pg_engine)
    connection, queue = await _listen(amqp_url)
    async with connection:
        # Committed by a conductor that never published (as one that died just after).
        offline = LocalClient(Dispatcher(pg_engine))
        snap = await offline.database_snapshot_create(admin, _values(5))
        await conductor.outbox.flush()
        got = await _collect(queue, {snap["resource_id"]}, 1)
        assert [e["event"] for e in got] == ["database_snapshot.created"]
        assert await conductor.outbox.flush() == 0  # marked sent: not sent twice
