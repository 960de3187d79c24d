"""floating_ip_* (api-network-quota-storage.md §3.1) through the client (RabbitMQ ->
conductor -> PostgreSQL) and on SQLite; the allocation race on PostgreSQL only."""

import asyncio
import uuid

import pytest
from sqlalchemy import select

from conductor.db.models import FixedIp, FloatingIp
from conductor.db.session import Session
from schemas import exceptions
from schemas.context import RequestContext, get_admin_context
from tests.conftest import _wipe

COLUMNS = {"id", "address", "fixed_ip_id", "project_id", "host", "auto_assigned", "pool",
           "interface", "created_at", "updated_at", "deleted_at", "deleted"}
ANONYMOUS = RequestContext(None, None)


@pytest.fixture
def raw(_api_backend, db):
    """The engine behind ``db`` (already emptied), for fixed IPs no function of ours makes."""
    return _api_backend[0]


async def _fixed(engine, **values):
    async with engine.begin() as conn:
        return (await Session(conn).insert(FixedIp, values))["id"]


async def _rows(engine):
    table = FloatingIp.__table__
    async with engine.connect() as conn:
        result = await conn.execute(select(table).order_by(table.c.id))
        return [dict(r) for r in result.mappings()]


async def _get(db, address, read_deleted="yes"):
    return await db.floating_ip_get_by_address(get_admin_context(read_deleted), address)


async def test_create_and_the_getters_with_project_scoping(db, admin, user):
    assert await db.floating_ip_create(admin, {"address": "10.0.0.1", "pool": "nova",
                                               "nonsense": 1}) == "10.0.0.1"
    await db.floating_ip_create(admin, {"address": "10.0.0.2", "project_id": "project1"})
    await db.floating_ip_create(admin, {"address": "10.0.0.3", "project_id": "project2"})
    free = await db.floating_ip_get_by_address(admin, "10.0.0.1")
    assert set(free) == COLUMNS
    assert free["pool"] == "nova" and free["auto_assigned"] is False
    assert free["deleted"] is False and free["created_at"] is not None
    assert free["updated_at"] is None
    assert await db.floating_ip_get(admin, free["id"]) == free
    # floating_ip_get is strictly project scoped: a user never sees free addresses there
    mine = await db.floating_ip_get_by_address(user, "10.0.0.2")
    assert (await db.floating_ip_get(user, mine["id"]))["address"] == "10.0.0.2"
    theirs = await db.floating_ip_get_by_address(admin, "10.0.0.3")
    for key in (free["id"], theirs["id"], 999, "x"):
        with pytest.raises(exceptions.FloatingIpNotFound) as info:
            await db.floating_ip_get(user, key)
        assert info.value.kwargs == {"id": key, "code": 404}
    # by address, a user sees free addresses and its own, and is refused other projects'
    assert (await db.floating_ip_get_by_address(user, "10.0.0.1"))["id"] == free["id"]
    with pytest.raises(exceptions.NotAuthorized) as refused:
        await db.floating_ip_get_by_address(user, "10.0.0.3")
    assert refused.value.kwargs == {"code": 403}
    with pytest.raises(exceptions.FloatingIpNotFoundForAddress) as info:
        await db.floating_ip_get_by_address(user, "10.9.9.9")
    assert info.value.kwargs == {"address": "10.9.9.9", "code": 404}
    with pytest.raises(exceptions.NotAuthorized):
        await db.floating_ip_get_by_address(ANONYMOUS, "10.0.0.1")


async def test_create_refuses_a_live_duplicate_address(db, admin, user):
    await db.floating_ip_create(admin, {"address": "10.0.0.1", "project_id": "project2"})
    with pytest.raises(exceptions.FloatingIpExists) as info:
        await db.floating_ip_create(admin, {"address": "10.0.0.1", "pool": "p"})
    # the kwargs are the row Nova was about to save (unset columns None)
    assert info.value.kwargs == {**dict.fromkeys(COLUMNS), "address": "10.0.0.1",
                                 "pool": "p", "code": 500}
    # the duplicate lookup is owner-checked
    with pytest.raises(exceptions.NotAuthorized):
        await db.floating_ip_create(user, {"address": "10.0.0.1"})
    # a row created deleted is not checked; a deleted row does not block a new one
    assert await db.floating_ip_create(admin, {"address": "10.0.0.1",
                                               "deleted": True}) == "10.0.0.1"
    await db.floating_ip_destroy(admin, "10.0.0.1")
    assert await db.floating_ip_create(user, {"address": "10.0.0.1"}) == "10.0.0.1"
    assert len(await db.floating_ip_get_all(admin)) == 1
    with pytest.raises(exceptions.InvalidInput):
        await db.floating_ip_create(admin, {"address": "10.0.0.5", "auto_assigned": "x"})


async def test_bulk_create_is_atomic_and_bulk_destroy_works_in_chunks(db, raw, admin):
    assert await db.floating_ip_bulk_create(admin, [
        {"address": f"10.1.{i // 256}.{i % 256}", "pool": "big", "interface": "eth0"}
        for i in range(300)]) is None
    assert await db.floating_ip_bulk_create(admin, [
        {"address": "10.2.0.1"}, {"address": "10.2.0.1", "host": "dup-in-list"}]) is None
    rows = await _rows(raw)
    assert len(rows) == 302 and rows[0]["address"] == "10.1.0.0"
    assert rows[299]["address"] == "10.1.1.43" and rows[299]["interface"] == "eth0"
    assert rows[0]["auto_assigned"] is False and rows[0]["created_at"] is not None
    existing = await db.floating_ip_get_by_address(admin, "10.1.0.5")
    with pytest.raises(exceptions.FloatingIpExists) as info:
        await db.floating_ip_bulk_create(admin, [{"address": "10.3.0.1"},
                                                 {"address": "10.1.0.5"}])
    assert info.value.kwargs == {**existing, "code": 500}
    assert len(await _rows(raw)) == 302  # nothing of the failed call stays
    gone = [{"address": r["address"]} for r in rows[:299]]
    assert await db.floating_ip_bulk_destroy(admin, gone + [{"address": "1.1.1.1"}]) \
        is None
    left = await db.floating_ip_get_all(admin)
    assert [r["address"] for r in left] == ["10.1.1.43", "10.2.0.1", "10.2.0.1"]
    dead = await _get(db, "10.1.0.0")
    assert dead["deleted"] is True and dead["deleted_at"] is not None
    assert dead["updated_at"] is not None  # a bulk destroy here moves updated_at
    assert (await _get(db, "10.1.1.42"))["deleted"] is True  # the second chunk
    with pytest.raises(exceptions.InvalidInput):
        await db.floating_ip_bulk_destroy(admin, [{"host": "h"}])


async def test_allocate_takes_the_first_free_address_of_the_pool(db, admin, user):
    await db.floating_ip_create(admin, {"address": "1.0.0.1", "pool": "a",
                                        "project_id": "project2"})
    with pytest.raises(exceptions.NoMoreFloatingIps) as info:  # TESTED
        await db.floating_ip_allocate_address(user, "project1", "a")
    assert info.value.kwargs == {"code": 404}
    await db.floating_ip_create(admin, {"address": "1.0.0.2", "pool": "a", "fixed_ip_id": 7})
    await db.floating_ip_create(admin, {"address": "1.0.0.3", "pool": "a", "deleted": True})
    await db.floating_ip_create(admin, {"address": "1.0.0.4", "pool": "b"})
    await db.floating_ip_create(admin, {"address": "1.0.0.5", "pool": "a", "host": "h",
                                        "auto_assigned": True})
    await db.floating_ip_create(admin, {"address": "1.0.0.6", "pool": "a"})
    await db.floating_ip_create(admin, {"address": "1.0.0.7"})
    assert await db.floating_ip_allocate_address(user, "project1", "a") == "1.0.0.5"
    taken = await db.floating_ip_get_by_address(user, "1.0.0.5")
    assert taken["project_id"] == "project1"
    assert taken["host"] == "h" and taken["auto_assigned"] is True  # untouched
    assert await db.floating_ip_allocate_address(user, "project1", "a") == "1.0.0.6"
    with pytest.raises(exceptions.NoMoreFloatingIps):
        await db.floating_ip_allocate_address(user, "project1", "a")
    assert await db.floating_ip_allocate_address(admin, "project9", None) == "1.0.0.7"
    with pytest.raises(exceptions.NotAuthorized):
        await db.floating_ip_allocate_address(user, "project2", "b")
    assert (await db.floating_ip_get_by_address(admin, "1.0.0.4"))["project_id"] is None


async def test_count_and_list_by_project_skip_auto_assigned_and_deleted(db, admin, user):
    for address, extra in (("1.0.0.1", {}), ("1.0.0.2", {"auto_assigned": True}),
                           ("1.0.0.3", {"deleted": True}), ("1.0.0.4", {})):
        await db.floating_ip_create(admin, {"address": address, "project_id": "project1",
                                            **extra})
    await db.floating_ip_create(admin, {"address": "1.0.0.5", "project_id": "project2"})
    assert await db.floating_ip_count_by_project(user, "project1") == 2
    assert await db.floating_ip_count_by_project(admin, "nobody") == 0
    listed = await db.floating_ip_get_all_by_project(user, "project1")
    assert [r["address"] for r in listed] == ["1.0.0.1", "1.0.0.4"]
    assert set(listed[0]) == COLUMNS
    assert await db.floating_ip_get_all_by_project(admin, "nobody") == []
    for call in (db.floating_ip_count_by_project, db.floating_ip_get_all_by_project):
        with pytest.raises(exceptions.NotAuthorized):
            await call(user, "project2")
        with pytest.raises(exceptions.NotAuthorized):
            await call(ANONYMOUS, "project1")


async def test_admin_lists_and_pools(db, admin, user):
    with pytest.raises(exceptions.NoFloatingIpsDefined) as info:
        await db.floating_ip_get_all(admin)
    assert info.value.kwargs == {"code": 404}
    await db.floating_ip_create(admin, {"address": "1.0.0.1", "pool": "b", "host": "h1"})
    await db.floating_ip_create(admin, {"address": "1.0.0.2", "pool": "a", "host": "h1"})
    await db.floating_ip_create(admin, {"address": "1.0.0.3", "host": "h2"})
    await db.floating_ip_create(admin, {"address": "1.0.0.4", "pool": "b"})
    await db.floating_ip_create(admin, {"address": "1.0.0.5", "pool": "c", "host": "h1",
                                        "deleted": True})
    assert [r["address"] for r in await db.floating_ip_get_all(get_admin_context("yes"))] \
        == ["1.0.0.1", "1.0.0.2", "1.0.0.3", "1.0.0.4"]
    by_host = await db.floating_ip_get_all_by_host(admin, "h1")
    assert [r["address"] for r in by_host] == ["1.0.0.1", "1.0.0.2"]
    with pytest.raises(exceptions.FloatingIpNotFoundForHost) as info:
        await db.floating_ip_get_all_by_host(admin, "h3")
    assert info.value.kwargs == {"host": "h3", "code": 404}
    for call in (db.floating_ip_get_all(user), db.floating_ip_get_all_by_host(user, "h1")):
        with pytest.raises(exceptions.AdminRequired):
            await call
    pools = await db.floating_ip_get_pools(user)
    assert sorted(pools, key=repr) == sorted([{"name": None}, {"name": "a"}, {"name": "b"}],
                                             key=repr)
    assert {"name": "c"} in await db.floating_ip_get_pools(RequestContext(
        "user1", "project1", read_deleted="yes"))
    with pytest.raises(exceptions.NotAuthorized):
        await db.floating_ip_get_pools(ANONYMOUS)


async def test_associate_lookup_and_disassociate(db, raw, admin, user):
    mine = await db.instance_create(admin, {"project_id": "project1"})
    theirs = await db.instance_create(admin, {"project_id": "project2"})
    fixed_id = await _fixed(raw, address="192.168.0.2", instance_uuid=mine["uuid"])
    other_id = await _fixed(raw, address="192.168.0.3")
    await _fixed(raw, address="192.168.0.4", instance_uuid=theirs["uuid"])
    orphan = str(uuid.uuid4())
    await _fixed(raw, address="192.168.0.5", instance_uuid=orphan)
    await db.floating_ip_create(admin, {"address": "1.0.0.1", "project_id": "project1"})
    assert await db.floating_ip_fixed_ip_associate(user, "1.0.0.1", "192.168.0.2",
                                                   "host1") is None
    got = await db.floating_ip_get_by_address(user, "1.0.0.1")
    assert got["fixed_ip_id"] == fixed_id and got["host"] == "host1"
    assert "fixed_ip" not in got
    assert [r["address"] for r in
            await db.floating_ip_get_by_fixed_address(user, "192.168.0.2")] == ["1.0.0.1"]
    assert await db.floating_ip_get_by_fixed_address(user, "192.168.0.3") == []
    assert [r["id"] for r in await db.floating_ip_get_by_fixed_ip_id(user, fixed_id)] == \
        [got["id"]]
    assert await db.floating_ip_get_by_fixed_ip_id(user, 4242) == []
    # an existing association is overwritten
    await db.floating_ip_fixed_ip_associate(admin, "1.0.0.1", "192.168.0.3", "host2")
    got = await db.floating_ip_get_by_address(user, "1.0.0.1")
    assert got["fixed_ip_id"] == other_id and got["host"] == "host2"
    assert await db.floating_ip_disassociate(user, "1.0.0.1") == "192.168.0.3"
    got = await db.floating_ip_get_by_address(user, "1.0.0.1")
    assert got["fixed_ip_id"] is None and got["host"] is None
    with pytest.raises(exceptions.FixedIpNotFound) as info:  # not associated
        await db.floating_ip_disassociate(user, "1.0.0.1")
    assert info.value.kwargs == {"id": None, "code": 404}
    # errors, and the owner checks on both addresses
    with pytest.raises(exceptions.FloatingIpNotFoundForAddress) as info:
        await db.floating_ip_fixed_ip_associate(user, "9.9.9.9", "192.168.0.2", "h")
    assert info.value.kwargs == {"address": "9.9.9.9", "code": 404}
    with pytest.raises(exceptions.FloatingIpNotFoundForAddress):
        await db.floating_ip_disassociate(user, "9.9.9.9")
    for call in (db.floating_ip_fixed_ip_associate(user, "1.0.0.1", "192.168.9.9", "h"),
                 db.floating_ip_get_by_fixed_address(user, "192.168.9.9")):
        with pytest.raises(exceptions.FixedIpNotFoundForAddress) as info:
            await call
        assert info.value.kwargs == {"address": "192.168.9.9", "code": 404}
    for call in (db.floating_ip_fixed_ip_associate(user, "1.0.0.1", "192.168.0.4", "h"),
                 db.floating_ip_get_by_fixed_address(user, "192.168.0.4")):
        with pytest.raises(exceptions.NotAuthorized):
            await call
    with pytest.raises(exceptions.InstanceNotFound) as info:
        await db.floating_ip_get_by_fixed_address(user, "192.168.0.5")
    assert info.value.kwargs == {"instance_id": orphan, "code": 404}
    assert (await db.floating_ip_get_by_address(user, "1.0.0.1"))["fixed_ip_id"] is None
    # a user whose project owns the instance may disassociate; another may not
    await db.floating_ip_fixed_ip_associate(admin, "1.0.0.1", "192.168.0.4", "h")
    with pytest.raises(exceptions.NotAuthorized):
        await db.floating_ip_disassociate(user, "1.0.0.1")
    assert (await db.floating_ip_get_by_address(user, "1.0.0.1"))["host"] == "h"


async def test_deallocate_update_auto_assign_and_destroy(db, admin, user):
    await db.floating_ip_create(admin, {"address": "1.0.0.1", "project_id": "project1",
                                        "host": "h", "auto_assigned": True,
                                        "fixed_ip_id": 3})
    await db.floating_ip_create(admin, {"address": "1.0.0.2", "project_id": "project2"})
    assert await db.floating_ip_deallocate(user, "1.0.0.1") is None
    got = await db.floating_ip_get_by_address(admin, "1.0.0.1")
    assert (got["project_id"], got["host"], got["auto_assigned"], got["fixed_ip_id"]) == \
        (None, None, False, 3)
    assert got["updated_at"] is not None
    assert await db.floating_ip_update(user, "1.0.0.1", {"interface": "eth1", "x": 1}) \
        is None
    assert await db.floating_ip_set_auto_assigned(user, "1.0.0.1") is None
    got = await db.floating_ip_get_by_address(admin, "1.0.0.1")
    assert got["interface"] == "eth1" and got["auto_assigned"] is True
    assert await db.floating_ip_destroy(user, "1.0.0.1") is None
    dead = await _get(db, "1.0.0.1")
    assert dead["deleted"] is True and dead["deleted_at"] is not None
    for call in (db.floating_ip_deallocate, db.floating_ip_destroy,
                 db.floating_ip_set_auto_assigned):
        with pytest.raises(exceptions.FloatingIpNotFoundForAddress) as info:
            await call(user, "1.0.0.1")
        assert info.value.kwargs == {"address": "1.0.0.1", "code": 404}
        with pytest.raises(exceptions.NotAuthorized):
            await call(user, "1.0.0.2")
    with pytest.raises(exceptions.FloatingIpNotFoundForAddress):
        await db.floating_ip_update(user, "1.0.0.1", {"host": "x"})
    with pytest.raises(exceptions.NotAuthorized):
        await db.floating_ip_update(user, "1.0.0.2", {"host": "x"})
    with pytest.raises(exceptions.InvalidInput):
        await db.floating_ip_update(admin, "1.0.0.2", {"fixed_ip_id": "abc"})
    got = await db.floating_ip_get_by_address(admin, "1.0.0.2")
    assert (got["host"], got["deleted"], got["fixed_ip_id"]) == (None, False, None)
    # an admin context that reads deleted rows reaches the destroyed address
    await db.floating_ip_update(get_admin_context("only"), "1.0.0.1", {"host": "again"})
    assert (await _get(db, "1.0.0.1"))["host"] == "again"


CALLERS = 20
FREE = 12


async def test_concurrent_allocations_never_share_an_address(rpc_client, pg_engine):
    """PostgreSQL only: SQLite runs one call at a time, so it cannot race."""
    await _wipe(pg_engine)
    admin = get_admin_context()
    await rpc_client.floating_ip_bulk_create(
        admin, [{"address": f"10.0.0.{i}", "pool": "race"} for i in range(FREE)]
        + [{"address": "10.9.0.1", "pool": "other"}])
    results = await asyncio.gather(*(
        rpc_client.floating_ip_allocate_address(RequestContext(f"u{i}", f"p{i}"), f"p{i}",
                                                "race")
        for i in range(CALLERS)), return_exceptions=True)
    won = {f"p{i}": r for i, r in enumerate(results) if isinstance(r, str)}
    lost = [r for r in results if not isinstance(r, str)]
    # every free address handed out exactly once; no spurious "no more" while one is free
    assert sorted(won.values()) == sorted(f"10.0.0.{i}" for i in range(FREE)), results
    assert len(lost) == CALLERS - FREE
    assert all(isinstance(r, exceptions.NoMoreFloatingIps) for r in lost), lost
    rows = await _rows(pg_engine)
    assert {r["address"]: r["project_id"] for r in rows} == \
        {**{a: p for p, a in won.items()}, "10.9.0.1": None}
