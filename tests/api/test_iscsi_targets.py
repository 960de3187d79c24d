"""iscsi_target_*, volume_allocate_iscsi_target and volume_get_iscsi_target_num
(api-network-quota-storage.md §3.7), through the client (RabbitMQ -> conductor ->
PostgreSQL) and on SQLite; the pool-pick race on PostgreSQL only."""

import asyncio

import pytest
from sqlalchemy import insert, select

from conductor.db.models import IscsiTarget, Volume
from schemas import exceptions
from schemas.context import get_admin_context
from tests.conftest import _wipe


@pytest.fixture
def raw(_api_backend, db):
    """The engine behind ``db`` (already emptied), for rows no function of ours makes."""
    return _api_backend[0]


async def _volumes(engine, *ids):
    # iscsi_targets.volume_id is a foreign key to volumes (enforced on PostgreSQL)
    async with engine.begin() as conn:
        await conn.execute(insert(Volume.__table__), [{"id": i} for i in ids])


async def test_create_safe_and_count(db, raw, admin, user):
    await _volumes(raw, "vol-1")
    made = await db.iscsi_target_create_safe(admin, {"target_num": 1, "host": "h1",
                                                     "nonsense": True})
    assert (made["target_num"], made["host"], made["volume_id"], made["deleted"]) == \
        (1, "h1", None, False)
    assert made["id"] > 0 and made["created_at"] is not None and made["nonsense"] is True
    # (target_num, host) is unique: None, and the call's transaction stays usable
    assert await db.iscsi_target_create_safe(admin, {"target_num": 1, "host": "h1"}) is None
    assert await db.iscsi_target_create_safe(admin, {"id": made["id"]}) is None
    await db.iscsi_target_create_safe(admin, {"target_num": 1, "host": "h2"})
    await db.iscsi_target_create_safe(admin, {"target_num": 2, "host": "h1",
                                              "volume_id": "vol-1"})
    await db.iscsi_target_create_safe(admin, {"target_num": 3, "host": "h1",
                                              "deleted": True})
    assert await db.iscsi_target_count_by_host(admin, "h1") == 2
    assert await db.iscsi_target_count_by_host(get_admin_context("yes"), "h1") == 3
    assert await db.iscsi_target_count_by_host(admin, "h3") == 0
    for call in (db.iscsi_target_count_by_host(user, "h1"),
                 db.iscsi_target_create_safe(user, {}),
                 db.volume_allocate_iscsi_target(user, "vol-1", "h1"),
                 db.volume_get_iscsi_target_num(user, "vol-1")):
        with pytest.raises(exceptions.AdminRequired):
            await call
    with pytest.raises(exceptions.InvalidInput):
        await db.iscsi_target_create_safe(admin, {"target_num": "three"})


async def test_allocate_and_get_target_num(db, raw, admin):
    await _volumes(raw, "vol-1", "vol-2", "vol-3", "vol-4")
    for values in ({"target_num": 10, "host": "h1", "deleted": True},
                   {"target_num": 11, "host": "h2"},
                   {"target_num": 12, "host": "h1", "volume_id": "vol-4"},
                   {"target_num": 14, "host": "h1"},
                   {"target_num": 13, "host": "h1"}):
        await db.iscsi_target_create_safe(admin, values)
    # lowest id first, not lowest target number
    assert await db.volume_allocate_iscsi_target(admin, "vol-1", "h1") == 14
    assert await db.volume_allocate_iscsi_target(admin, "vol-2", "h1") == 13
    with pytest.raises(exceptions.NoMoreTargets) as info:
        await db.volume_allocate_iscsi_target(admin, "vol-3", "h1")
    assert info.value.kwargs == {"code": 500}
    assert await db.volume_get_iscsi_target_num(admin, "vol-1") == 14
    assert await db.volume_get_iscsi_target_num(admin, "vol-4") == 12
    # deleted targets still answer
    await db.iscsi_target_create_safe(admin, {"target_num": 20, "host": "h3",
                                              "volume_id": "vol-3", "deleted": True})
    assert await db.volume_get_iscsi_target_num(admin, "vol-3") == 20
    with pytest.raises(exceptions.ISCSITargetNotFoundForVolume) as info:
        await db.volume_get_iscsi_target_num(admin, "vol-9")
    assert info.value.kwargs == {"volume_id": "vol-9", "code": 404}


# --- PostgreSQL races ------------------------------------------------------------------

CALLERS = 15


async def test_concurrent_exports_never_share_a_target(rpc_client, pg_engine):
    await _wipe(pg_engine)
    admin = get_admin_context()
    free = CALLERS - 3
    volumes = [f"vol-{i}" for i in range(CALLERS)]
    await _volumes(pg_engine, *volumes)
    for num in range(free):
        await rpc_client.iscsi_target_create_safe(admin, {"target_num": num, "host": "h1"})
    results = await asyncio.gather(*(rpc_client.volume_allocate_iscsi_target(admin, v, "h1")
                                     for v in volumes), return_exceptions=True)
    nums = [r for r in results if isinstance(r, int)]
    assert sorted(nums) == list(range(free)), results
    assert all(isinstance(r, exceptions.NoMoreTargets) for r in results
               if not isinstance(r, int)), results
    for volume, result in zip(volumes, results, strict=True):
        if isinstance(result, int):
            assert await rpc_client.volume_get_iscsi_target_num(admin, volume) == result


async def test_allocation_skips_a_target_another_transaction_holds(rpc_client, pg_engine):
    await _wipe(pg_engine)
    admin = get_admin_context()
    await _volumes(pg_engine, "vol-1")
    for num in (1, 2):
        await rpc_client.iscsi_target_create_safe(admin, {"target_num": num, "host": "h1"})
    table = IscsiTarget.__table__
    async with pg_engine.begin() as conn:
        await conn.execute(select(table.c.id).where(table.c.target_num == 1)
                           .with_for_update())
        # Without SKIP LOCKED the call would wait for this transaction; the guard turns
        # that into a failure instead of a hang.
        got = await asyncio.wait_for(
            rpc_client.volume_allocate_iscsi_target(admin, "vol-1", "h1"), 20)
        assert got == 2
