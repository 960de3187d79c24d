"""bw_usage_* (api-compute.md §3.16), through the client and on SQLite; the upsert race
through RabbitMQ on PostgreSQL."""

import asyncio
import datetime as dt

import pytest
from sqlalchemy import func, select, update

from conductor.db.models import BandwidthUsage
from schemas import exceptions
from schemas.context import RequestContext
from tests.conftest import _wipe

USAGE = BandwidthUsage.__table__
START = dt.datetime(2012, 1, 1, 0, 0, 0)


@pytest.fixture
def raw(_api_backend, db):
    """The engine behind ``db`` (already emptied), to delete rows and count them."""
    return _api_backend[0]


async def _count(engine):
    async with engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(USAGE))).scalar_one()


async def test_update_inserts_then_replaces(db, user, raw):
    uuids = ["fake_uuid1", "fake_uuid2", "fake_uuid3"]
    assert await db.bw_usage_get_by_uuids(user, uuids, START) == []
    before = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    refreshed = dt.datetime(2012, 1, 1, 12, 30, 0)
    assert await db.bw_usage_update(user, "fake_uuid1", "fake_mac1", START, 100, 200) is None
    await db.bw_usage_update(user, "fake_uuid2", "fake_mac2", START, 100, 200)
    await db.bw_usage_update(user, "fake_uuid3", "fake_mac3", START, 100, 200,
                             last_refreshed=refreshed)
    rows = await db.bw_usage_get_by_uuids(user, uuids, START)
    assert [(r["uuid"], r["mac"], r["start_period"], r["bw_in"], r["bw_out"])
            for r in rows] == [(u, f"fake_mac{i}", START, 100, 200)
                               for i, u in enumerate(uuids, 1)]
    assert all(r["last_refreshed"] >= before for r in rows[:2])
    assert rows[2]["last_refreshed"] == refreshed and rows[0]["updated_at"] is None
    # the same key again: the row is updated in place
    await db.bw_usage_update(user, "fake_uuid2", "fake_mac2", START, 200, 300)
    rows = await db.bw_usage_get_by_uuids(user, uuids, START)
    assert (rows[1]["bw_in"], rows[1]["bw_out"]) == (200, 300)
    assert rows[1]["updated_at"] is not None and await _count(raw) == 3
    # another mac or period is another row; the filter is the exact period
    await db.bw_usage_update(user, "fake_uuid2", "other_mac", START, 1, 2)
    await db.bw_usage_update(user, "fake_uuid2", "fake_mac2", START.replace(day=2), 1, 2)
    assert len(await db.bw_usage_get_by_uuids(user, ["fake_uuid2"], START)) == 2
    assert await db.bw_usage_get_by_uuids(user, uuids, START.replace(hour=1)) == []
    assert await db.bw_usage_get_by_uuids(user, [], START) == []
    # an aware start is compared as naive UTC
    aware = dt.datetime(2012, 1, 1, 1, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert len(await db.bw_usage_get_by_uuids(user, uuids, aware)) == 4


async def test_deleted_rows_are_read_and_updated(db, user, raw):
    await db.bw_usage_update(user, "u1", "m1", START, 1, 1)
    async with raw.begin() as conn:
        await conn.execute(update(USAGE).values(deleted=True))
    await db.bw_usage_update(user, "u1", "m1", START, 5, 6)
    [row] = await db.bw_usage_get_by_uuids(user, ["u1"], START)
    assert row["deleted"] is True and (row["bw_in"], row["bw_out"]) == (5, 6)
    assert await _count(raw) == 1


async def test_refusals(db, user):
    with pytest.raises(exceptions.NotAuthorized):
        await db.bw_usage_update(RequestContext(None, None), "u", "m", START, 1, 1)
    with pytest.raises(exceptions.NotAuthorized):
        await db.bw_usage_get_by_uuids(RequestContext(None, None), ["u"], START)
    with pytest.raises(exceptions.InvalidInput, match="bw_usage_cache.start_period"):
        await db.bw_usage_update(user, "u", "m", "yesterday", 1, 1)
    with pytest.raises(exceptions.InvalidInput, match="bw_usage_cache.mac"):
        await db.bw_usage_update(user, "u", None, START, 1, 1)
    with pytest.raises(exceptions.InvalidInput, match="uuids"):
        await db.bw_usage_get_by_uuids(user, "u", START)


async def test_concurrent_first_updates_make_one_row(rpc_client, pg_engine):
    await _wipe(pg_engine)
    user = RequestContext("user1", "project1")
    results = await asyncio.gather(*(
        rpc_client.bw_usage_update(user, "uuid", "mac", START, i, i) for i in range(20)))
    assert results == [None] * 20
    assert await _count(pg_engine) == 1
