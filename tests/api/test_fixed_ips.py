"""fixed_ip_* and fixed_ips_by_virtual_interface (api-network-quota-storage.md §3.3),
through the client (RabbitMQ -> conductor -> PostgreSQL) and on SQLite; the pool-pick and
row-lock races on PostgreSQL only."""

import asyncio
import datetime as dt
import uuid

import pytest
from sqlalchemy import insert, select

from conductor.db.models import FixedIp, Network
from schemas import exceptions
from schemas.context import RequestContext, get_admin_context
from tests.conftest import _wipe

UUID = str(uuid.uuid4())


@pytest.fixture
def raw(_api_backend, db):
    """The engine behind ``db`` (already emptied), for rows no function of ours makes."""
    return _api_backend[0]


async def _insert(engine, model, **values):
    table = model.__table__
    async with engine.begin() as conn:
        result = await conn.execute(insert(table).values(**values).returning(table.c.id))
        return result.scalar_one()


async def _instance(db, project_id="project1", **values):
    return (await db.instance_create(get_admin_context(),
                                     {"project_id": project_id, **values}))["uuid"]


async def test_create_bulk_create_and_reads(db, admin):
    with pytest.raises(exceptions.NoFixedIpsDefined) as info:
        await db.fixed_ip_get_all(admin)
    assert info.value.kwargs == {"code": 404}
    old = dt.datetime(2001, 2, 3, 4, 5, 6)
    assert await db.fixed_ip_create(admin, {"address": "10.0.0.1", "network_id": 7,
                                            "updated_at": old, "bogus": 1}) == "10.0.0.1"
    assert await db.fixed_ip_bulk_create(admin, [{"address": "10.0.0.2", "reserved": True},
                                                 {"address": "10.0.0.3"}]) is None
    got = await db.fixed_ip_get_by_address(admin, "10.0.0.1")
    assert got["updated_at"] == old and got["created_at"] is not None
    assert (got["network_id"], got["allocated"], got["leased"], got["reserved"]) == \
        (7, False, False, False)
    assert "bogus" not in got and "network" not in got
    assert await db.fixed_ip_get(admin, got["id"]) == got
    assert [f["address"] for f in await db.fixed_ip_get_all(admin)] == \
        ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    # the address is no unique key
    await db.fixed_ip_create(admin, {"address": "10.0.0.1", "deleted": True})
    assert len(await db.fixed_ip_get_all(admin)) == 4  # deleted rows included
    assert (await db.fixed_ip_get_by_address(admin, "10.0.0.1"))["id"] == got["id"]
    for bad in (999, "nonsense"):
        with pytest.raises(exceptions.FixedIpNotFound) as info:
            await db.fixed_ip_get(admin, bad)
        assert info.value.kwargs == {"id": bad, "code": 404}
    with pytest.raises(exceptions.FixedIpNotFoundForAddress) as info:
        await db.fixed_ip_get_by_address(admin, "10.9.9.9")
    assert info.value.kwargs == {"address": "10.9.9.9", "code": 404}
    # one bad row: nothing of the bulk create is kept
    with pytest.raises(exceptions.InvalidInput):
        await db.fixed_ip_bulk_create(admin, [{"address": "10.0.0.8"},
                                              {"network_id": "many"}])
    with pytest.raises(exceptions.FixedIpNotFoundForAddress):
        await db.fixed_ip_get_by_address(admin, "10.0.0.8")


async def test_access_levels(db, user):
    anonymous = RequestContext(None, None)
    for call in (db.fixed_ip_get_all(user), db.fixed_ip_get_network(user, "a"),
                 db.fixed_ip_associate(user, "a", UUID),
                 db.fixed_ip_associate_pool(user, 1),
                 db.fixed_ip_disassociate_all_by_timeout(user, "h", dt.datetime.now())):
        with pytest.raises(exceptions.AdminRequired):
            await call
    with pytest.raises(exceptions.NotAuthorized):
        await db.fixed_ip_create(anonymous, {"address": "a"})
    assert await db.fixed_ip_create(user, {"address": "a"}) == "a"
    assert (await db.fixed_ip_get_by_address(user, "a"))["address"] == "a"


async def test_associate_by_address(db, admin):
    await db.fixed_ip_bulk_create(admin, [
        {"address": "10.0.0.1", "network_id": None, "host": "h", "allocated": True},
        {"address": "10.0.0.2", "network_id": 1},
        {"address": "10.0.0.3", "network_id": 1, "reserved": True},
        {"address": "10.0.0.4", "network_id": 1, "deleted": True}])
    with pytest.raises(exceptions.InvalidUUID) as info:
        await db.fixed_ip_associate(admin, "10.0.0.1", "not-a-uuid")
    assert info.value.kwargs == {"uuid": "not-a-uuid", "code": 400}
    for address, network_id, reserved in ((None, 1, False), ("10.0.0.2", 2, False),
                                          ("10.0.0.3", 1, False), ("10.0.0.2", 1, True),
                                          ("10.0.0.2", None, False), ("10.0.0.4", 1, False)):
        with pytest.raises(exceptions.FixedIpNotFoundForNetwork) as info:
            await db.fixed_ip_associate(admin, address, UUID, network_id, reserved)
        assert info.value.kwargs == {"address": address, "network_id": network_id,
                                     "code": 404}
    # a NULL network takes the given one; host, allocated, leased are left alone
    assert await db.fixed_ip_associate(admin, "10.0.0.1", UUID, 5) == "10.0.0.1"
    got = await db.fixed_ip_get_by_address(admin, "10.0.0.1")
    assert (got["instance_uuid"], got["network_id"], got["host"], got["allocated"]) == \
        (UUID, 5, "h", True)
    with pytest.raises(exceptions.FixedIpAlreadyInUse) as info:
        await db.fixed_ip_associate(admin, "10.0.0.1", str(uuid.uuid4()), 5)
    assert info.value.kwargs == {"address": "10.0.0.1", "code": 500}
    assert await db.fixed_ip_associate(admin, "10.0.0.3", UUID, 1, True) == "10.0.0.3"
    assert (await db.fixed_ip_get_by_address(admin, "10.0.0.3"))["network_id"] == 1


async def test_associate_pool_takes_the_lowest_free_row(db, admin):
    await db.fixed_ip_bulk_create(admin, [
        {"address": "a", "network_id": 1, "host": "gateway-host"},
        {"address": "b", "network_id": 1, "reserved": True},
        {"address": "c", "network_id": 1, "instance_uuid": UUID},
        {"address": "d", "network_id": 1, "deleted": True},
        {"address": "e", "network_id": 2},
        {"address": "f", "network_id": None},
        {"address": "g", "network_id": 1}])
    with pytest.raises(exceptions.InvalidUUID) as info:
        await db.fixed_ip_associate_pool(admin, 1, "nope")
    assert info.value.kwargs == {"uuid": "nope", "code": 400}
    mine = str(uuid.uuid4())
    # a NULL network is stored (§7 item 1)
    assert await db.fixed_ip_associate_pool(admin, 1, mine) == "f"
    got = await db.fixed_ip_get_by_address(admin, "f")
    assert (got["network_id"], got["instance_uuid"], got["host"]) == (1, mine, None)
    # a host claim without an instance
    assert await db.fixed_ip_associate_pool(admin, 1, host="node1") == "g"
    got = await db.fixed_ip_get_by_address(admin, "g")
    assert (got["instance_uuid"], got["host"]) == (None, "node1")
    with pytest.raises(exceptions.NoMoreFixedIps) as info:
        await db.fixed_ip_associate_pool(admin, 1, mine)
    assert info.value.kwargs == {"code": 500}
    # a falsy instance_uuid is not validated
    assert await db.fixed_ip_associate_pool(admin, 2, "") == "e"


async def test_owner_checks_for_user_contexts(db, user, other_user, admin):
    mine, theirs = await _instance(db), await _instance(db, "project2")
    await db.instance_destroy(admin, theirs)  # deleted instances still count
    missing = str(uuid.uuid4())
    await db.fixed_ip_bulk_create(admin, [
        {"address": "mine", "instance_uuid": mine}, {"address": "theirs",
                                                     "instance_uuid": theirs},
        {"address": "free"}, {"address": "orphan", "instance_uuid": missing}])
    ids = {f["address"]: f["id"] for f in await db.fixed_ip_get_all(admin)}
    assert (await db.fixed_ip_get(user, ids["mine"]))["address"] == "mine"
    assert (await db.fixed_ip_get(other_user, ids["free"]))["address"] == "free"
    assert (await db.fixed_ip_get(other_user, ids["theirs"]))["address"] == "theirs"
    for call in (db.fixed_ip_get(user, ids["theirs"]),
                 db.fixed_ip_get_by_address(user, "theirs"),
                 db.fixed_ip_update(user, "theirs", {"leased": True}),
                 db.fixed_ip_disassociate(user, "theirs")):
        with pytest.raises(exceptions.NotAuthorized) as info:
            await call
        assert type(info.value) is exceptions.NotAuthorized
        assert info.value.kwargs == {"code": 403}
    for call in (db.fixed_ip_get(user, ids["orphan"]),
                 db.fixed_ip_get_by_address(user, "orphan")):
        with pytest.raises(exceptions.InstanceNotFound) as info:
            await call
        assert info.value.kwargs == {"instance_id": missing, "code": 404}
    # nothing was changed by the refused writes; admins are never checked
    got = await db.fixed_ip_get_by_address(admin, "theirs")
    assert (got["leased"], got["instance_uuid"]) == (False, theirs)
    assert (await db.fixed_ip_get(admin, ids["orphan"]))["address"] == "orphan"


async def test_disassociate_and_update(db, admin, user):
    inst = await _instance(db)
    await db.fixed_ip_create(admin, {"address": "a", "instance_uuid": inst, "host": "h",
                                     "allocated": True, "leased": True,
                                     "virtual_interface_id": 3})
    assert await db.fixed_ip_update(user, "a", {"allocated": False, "nope": 1}) is None
    assert await db.fixed_ip_disassociate(user, "a") is None
    got = await db.fixed_ip_get_by_address(admin, "a")
    assert (got["instance_uuid"], got["allocated"], got["leased"], got["host"],
            got["virtual_interface_id"]) == (None, False, True, "h", 3)
    assert got["updated_at"] is not None
    for call in (db.fixed_ip_update(admin, "b", {}), db.fixed_ip_disassociate(admin, "b")):
        with pytest.raises(exceptions.FixedIpNotFoundForAddress) as info:
            await call
        assert info.value.kwargs == {"address": "b", "code": 404}
    with pytest.raises(exceptions.InvalidInput):
        await db.fixed_ip_update(admin, "a", {"allocated": "maybe"})


async def _timeout_setup(db, admin, now, multi_host):
    inst = await _instance(db, host="foo")
    net = await db.network_create_safe(admin, {"multi_host": multi_host, "host": "bar"})
    old, new = now - dt.timedelta(seconds=5), now + dt.timedelta(seconds=5)
    base = {"instance_uuid": inst, "network_id": net["id"], "allocated": False,
            "updated_at": old, "leased": True}
    await db.fixed_ip_bulk_create(admin, [
        {**base, "address": "stale"},
        {**base, "address": "allocated", "allocated": True},
        {**base, "address": "no-network", "network_id": None},
        {**base, "address": "fresh", "updated_at": new},
        {**base, "address": "never-updated", "updated_at": None},
        {**base, "address": "deleted", "deleted": True}])


async def test_disassociate_all_by_timeout_single_host(db, admin):
    now = dt.datetime(2012, 9, 27, 12, 0, 0)
    await _timeout_setup(db, admin, now, False)
    assert await db.fixed_ip_disassociate_all_by_timeout(admin, "foo", now) == 0
    assert await db.fixed_ip_disassociate_all_by_timeout(admin, "bar", now) == 1
    released = await db.fixed_ip_get_by_address(admin, "stale")
    assert (released["instance_uuid"], released["leased"]) == (None, False)
    assert released["updated_at"] > now
    kept = await db.fixed_ip_get_by_address(admin, "fresh")
    assert kept["instance_uuid"] is not None and kept["leased"] is True
    assert await db.fixed_ip_disassociate_all_by_timeout(admin, "bar", now) == 0
    with pytest.raises(exceptions.InvalidInput):
        await db.fixed_ip_disassociate_all_by_timeout(admin, "bar", "yesterday")


async def test_disassociate_all_by_timeout_multi_host(db, admin):
    now = dt.datetime(2012, 9, 27, 12, 0, 0)
    await _timeout_setup(db, admin, now, True)
    assert await db.fixed_ip_disassociate_all_by_timeout(admin, "foo", now) == 1
    assert await db.fixed_ip_disassociate_all_by_timeout(admin, "bar", now) == 0
    assert (await db.fixed_ip_get_by_address(admin, "stale"))["instance_uuid"] is None


async def test_get_by_instance_network_host_and_vif(db, admin, user):
    inst = await _instance(db)
    await db.fixed_ip_bulk_create(admin, [
        {"address": "a", "instance_uuid": inst, "network_id": 1, "host": "h",
         "virtual_interface_id": 9},
        {"address": "b", "instance_uuid": inst, "network_id": 1, "host": "h",
         "virtual_interface_id": 9},
        {"address": "c", "instance_uuid": inst, "network_id": 1, "host": "h",
         "virtual_interface_id": 9, "deleted": True}])
    assert [f["address"] for f in await db.fixed_ip_get_by_instance(user, inst)] == ["a", "b"]
    with pytest.raises(exceptions.InvalidUUID) as info:
        await db.fixed_ip_get_by_instance(user, "x")
    assert info.value.kwargs == {"uuid": "x", "code": 400}
    with pytest.raises(exceptions.FixedIpNotFoundForInstance) as info:
        await db.fixed_ip_get_by_instance(user, UUID)
    assert info.value.kwargs == {"instance_uuid": UUID, "code": 404}
    assert (await db.fixed_ip_get_by_network_host(user, 1, "h"))["address"] == "a"
    with pytest.raises(exceptions.FixedIpNotFoundForNetworkHost) as info:
        await db.fixed_ip_get_by_network_host(user, 2, "h")
    assert info.value.kwargs == {"network_id": 2, "host": "h", "code": 404}
    assert [f["address"] for f in await db.fixed_ips_by_virtual_interface(user, 9)] == \
        ["a", "b"]
    assert await db.fixed_ips_by_virtual_interface(user, 10) == []


async def test_get_network(db, raw, admin):
    net = await _insert(raw, Network, label="gone", deleted=True)
    await db.fixed_ip_bulk_create(admin, [{"address": "a", "network_id": net},
                                          {"address": "b"},
                                          {"address": "c", "network_id": net + 100}])
    found = await db.fixed_ip_get_network(admin, "a")
    assert (found["id"], found["label"], found["deleted"]) == (net, "gone", True)
    assert await db.fixed_ip_get_network(admin, "b") is None
    assert await db.fixed_ip_get_network(admin, "c") is None
    with pytest.raises(exceptions.FixedIpNotFoundForAddress) as info:
        await db.fixed_ip_get_network(admin, "d")
    assert info.value.kwargs == {"address": "d", "code": 404}


# --- PostgreSQL races ------------------------------------------------------------------

CALLERS = 15


async def test_concurrent_pool_picks_never_share_an_address(rpc_client, pg_engine):
    await _wipe(pg_engine)
    admin = get_admin_context()
    free = CALLERS - 3
    await rpc_client.fixed_ip_bulk_create(admin, [{"address": f"10.0.0.{i}", "network_id": 1}
                                                  for i in range(free)])
    results = await asyncio.gather(*(
        rpc_client.fixed_ip_associate_pool(admin, 1, str(uuid.uuid4()))
        for _ in range(CALLERS)), return_exceptions=True)
    addresses = [r for r in results if isinstance(r, str)]
    refused = [r for r in results if not isinstance(r, str)]
    assert sorted(addresses) == sorted(f"10.0.0.{i}" for i in range(free)), results
    assert len(refused) == 3
    assert all(isinstance(r, exceptions.NoMoreFixedIps) for r in refused), refused
    rows = await rpc_client.fixed_ip_get_all(admin)
    assert len({r["instance_uuid"] for r in rows}) == free


async def test_pool_pick_skips_a_row_another_transaction_holds(rpc_client, pg_engine):
    await _wipe(pg_engine)
    admin = get_admin_context()
    await rpc_client.fixed_ip_bulk_create(admin, [{"address": "a", "network_id": 1},
                                                  {"address": "b", "network_id": 1}])
    table = FixedIp.__table__
    async with pg_engine.begin() as conn:
        await conn.execute(select(table.c.id).where(table.c.address == "a").with_for_update())
        # Without SKIP LOCKED the call would wait for this transaction; the guard turns
        # that into a failure instead of a hang.
        got = await asyncio.wait_for(rpc_client.fixed_ip_associate_pool(admin, 1, UUID), 20)
        assert got == "b"


async def test_concurrent_associate_of_one_address_has_one_winner(rpc_client, pg_engine):
    await _wipe(pg_engine)
    admin = get_admin_context()
    await rpc_client.fixed_ip_create(admin, {"address": "10.0.0.1", "network_id": 1})
    wanted = [str(uuid.uuid4()) for _ in range(CALLERS)]
    results = await asyncio.gather(*(
        rpc_client.fixed_ip_associate(admin, "10.0.0.1", u, 1) for u in wanted),
        return_exceptions=True)
    winners = [u for u, r in zip(wanted, results, strict=True) if r == "10.0.0.1"]
    assert len(winners) == 1, results
    assert all(isinstance(r, exceptions.FixedIpAlreadyInUse)
               for r in results if r != "10.0.0.1"), results
    got = await rpc_client.fixed_ip_get_by_address(admin, "10.0.0.1")
    assert got["instance_uuid"] == winners[0]
