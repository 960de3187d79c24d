"""network_* (api-network-quota-storage.md §3.5) and project_get_networks (§3.6), through
the client (RabbitMQ -> conductor -> PostgreSQL) and on SQLite; the association and
set-host races on PostgreSQL only."""

import asyncio
import uuid

import pytest
from sqlalchemy import insert, select

from conductor.db.models import Network, VirtualInterface
from schemas import exceptions
from schemas.context import RequestContext, get_admin_context
from tests.conftest import _wipe


@pytest.fixture
def raw(_api_backend, db):
    """The engine behind ``db`` (already emptied), for rows no function of ours makes."""
    return _api_backend[0]


async def _insert(engine, model, **values):
    table = model.__table__
    async with engine.begin() as conn:
        result = await conn.execute(insert(table).values(**values).returning(table.c.id))
        return result.scalar_one()


async def _networks(db, admin, *projects, **values):
    return [await db.network_create_safe(admin, {"project_id": p, **values})
            for p in projects]


async def test_create_safe(db, admin, user):
    net = await db.network_create_safe(admin, {"label": "n1", "vlan": 5, "cidr": "10.0.0.0/24",
                                               "nonsense": 1})
    assert len(net["uuid"]) == 36 and uuid.UUID(net["uuid"])
    assert (net["label"], net["vlan"], net["injected"], net["multi_host"]) == \
        ("n1", 5, False, False)
    assert net["created_at"] is not None and net["updated_at"] is None
    assert net["nonsense"] == 1  # echoed, not stored
    got = await db.network_get(admin, net["id"])
    assert got["uuid"] == net["uuid"] and "nonsense" not in got
    with pytest.raises(exceptions.DuplicateVlan) as info:
        await db.network_create_safe(admin, {"vlan": 5})
    assert info.value.kwargs == {"vlan": 5, "code": 500}
    # vlan 0 / None are never checked; a deleted network's vlan is free
    await db.network_create_safe(admin, {"vlan": 0})
    await db.network_create_safe(admin, {"vlan": 0, "uuid": "given"})
    await db.network_create_safe(admin, {"vlan": 6, "deleted": True})
    assert (await db.network_create_safe(admin, {"vlan": 6}))["vlan"] == 6
    assert (await db.network_get_by_uuid(admin, "given"))["vlan"] == 0
    # uniqueness violations give None, and nothing is kept of them
    assert await db.network_create_safe(admin, {"cidr": "10.0.0.0/24", "label": "x"}) is None
    assert await db.network_create_safe(admin, {"id": net["id"], "label": "x"}) is None
    assert await db.network_create_safe(admin, {"vpn_public_address": "1.2.3.4",
                                                "vpn_public_port": 1000}) is not None
    assert await db.network_create_safe(admin, {"vpn_public_address": "1.2.3.4",
                                                "vpn_public_port": 1000}) is None
    # a forced id does not make later automatic ids collide
    forced = await db.network_create_safe(admin, {"id": 100})
    assert forced["id"] == 100
    assert (await db.network_create_safe(admin, {}))["id"] > 100
    assert await db.network_count(admin) == 7
    with pytest.raises(exceptions.AdminRequired):
        await db.network_create_safe(user, {})
    with pytest.raises(exceptions.InvalidInput):
        await db.network_create_safe(admin, {"vlan": "many"})


async def test_get_and_scoping(db_config, db, admin, user, monkeypatch):
    # reads across projects as 2012.2 answers them (strict isolation: test_isolation.py)
    monkeypatch.setattr(db_config, "isolation", "nova")
    mine, theirs, free = await _networks(db, admin, "project1", "project2", None)
    deleted = await db.network_create_safe(admin, {"project_id": "project1", "deleted": True})
    cases = [((), [mine, free]), (("allow_none",), [mine, free]), ((True,), [mine]),
             ((False,), [mine, theirs, free])]
    for extra, nets in cases:
        for net in (mine, theirs, free):
            if net in nets:
                assert (await db.network_get(user, net["id"], *extra))["id"] == net["id"]
                continue
            with pytest.raises(exceptions.NetworkNotFound) as info:
                await db.network_get(user, net["id"], *extra)
            assert info.value.kwargs == {"network_id": net["id"], "code": 404}
    assert (await db.network_get(admin, theirs["id"], True))["id"] == theirs["id"]
    with pytest.raises(exceptions.NetworkNotFound):
        await db.network_get(admin, deleted["id"])
    assert (await db.network_get(get_admin_context("only"), deleted["id"]))["deleted"] is True
    with pytest.raises(exceptions.NetworkNotFound) as info:
        await db.network_get(admin, "abc")
    assert info.value.kwargs == {"network_id": "abc", "code": 404}
    with pytest.raises(exceptions.NotAuthorized):
        await db.network_get(RequestContext(None, None), mine["id"])
    # network_get_all: non-deleted, no scoping at all
    assert [n["id"] for n in await db.network_get_all(user)] == \
        [mine["id"], theirs["id"], free["id"]]


async def test_get_all_when_empty_and_declared_only_functions(db, admin):
    with pytest.raises(exceptions.NoNetworksFound) as info:
        await db.network_get_all(admin)
    assert info.value.kwargs == {"code": 404}
    for call in (db.network_create_fixed_ips(admin, 1, 2), db.network_get_index(admin, 1),
                 db.network_set_cidr(admin, 1, "10.0.0.0/8")):
        with pytest.raises(exceptions.RemoteError) as info:
            await call
        assert info.value.kwargs["exc_type"] == "NotImplementedError"


async def test_get_all_by_uuids(db_config, db, admin, user, monkeypatch):
    # reads across projects as 2012.2 answers them (strict isolation: test_isolation.py)
    monkeypatch.setattr(db_config, "isolation", "nova")
    mine, theirs, free = await _networks(db, admin, "project1", "project2", None)
    gone = await db.network_create_safe(admin, {"deleted": True})
    both = [free["uuid"], mine["uuid"]]
    assert sorted(n["id"] for n in await db.network_get_all_by_uuids(user, both)) == \
        [mine["id"], free["id"]]
    for uuids in ([], [str(uuid.uuid4())], [gone["uuid"]], [None]):
        with pytest.raises(exceptions.NoNetworksFound):
            await db.network_get_all_by_uuids(admin, uuids)
    with pytest.raises(exceptions.NoNetworksFound):
        await db.network_get_all_by_uuids(user, [theirs["uuid"]])
    # the first missing uuid in input order is reported; the class depends on
    # project_only only, not on the context
    missing = [mine["uuid"], gone["uuid"], theirs["uuid"]]
    with pytest.raises(exceptions.NetworkNotFoundForProject) as info:
        await db.network_get_all_by_uuids(user, missing)
    assert info.value.kwargs == {"network_uuid": gone["uuid"], "project_id": "project1",
                                 "code": 404}
    with pytest.raises(exceptions.NetworkNotFoundForProject) as info:
        await db.network_get_all_by_uuids(admin, [mine["uuid"], theirs["uuid"], gone["uuid"]])
    assert info.value.kwargs["network_uuid"] == gone["uuid"]
    with pytest.raises(exceptions.NetworkNotFoundForProject) as info:
        await db.network_get_all_by_uuids(user, [mine["uuid"], theirs["uuid"]], True)
    assert info.value.kwargs["network_uuid"] == theirs["uuid"]
    with pytest.raises(exceptions.NetworkNotFound) as info:
        await db.network_get_all_by_uuids(user, [theirs["uuid"], gone["uuid"]], False)
    assert type(info.value) is exceptions.NetworkNotFound
    assert info.value.kwargs == {"network_id": gone["uuid"], "code": 404}


async def test_associate_and_project_get_networks(db, admin, user):
    a, b, c = await _networks(db, admin, None, None, None)
    await db.network_create_safe(admin, {"deleted": True})  # never handed out
    with pytest.raises(exceptions.AdminRequired):
        await db.network_associate(user, "project1")
    assert await db.project_get_networks(user, "project1", False) == []
    with pytest.raises(exceptions.AdminRequired):
        await db.project_get_networks(user, "project1")
    got = await db.project_get_networks(admin, "project1")
    assert [(n["id"], n["project_id"]) for n in got] == [(a["id"], "project1")]
    assert [n["id"] for n in await db.project_get_networks(user, "project1")] == [a["id"]]
    # not forced: the project keeps its network, whatever network_id says
    again = await db.network_associate(admin, "project1", c["id"])
    assert (again["id"], again["project_id"]) == (a["id"], "project1")
    # forced: an additional, named network; an owned one is not free, even for its owner
    forced = await db.network_associate(admin, "project1", c["id"], True)
    assert (forced["id"], forced["project_id"]) == (c["id"], "project1")
    for network_id in (a["id"], c["id"], 999):
        with pytest.raises(exceptions.NoMoreNetworks) as info:
            await db.network_associate(admin, "project2", network_id, True)
        assert info.value.kwargs == {"code": 500}
    assert (await db.network_associate(admin, "project2"))["id"] == b["id"]
    with pytest.raises(exceptions.NoMoreNetworks):
        await db.network_associate(admin, "project3")
    with pytest.raises(exceptions.NoMoreNetworks):
        await db.project_get_networks(admin, "project3")
    assert sorted(n["id"] for n in await db.project_get_networks(user, "project1")) == \
        [a["id"], c["id"]]
    # None names the unassigned networks
    await db.network_disassociate(admin, b["id"])
    assert [n["id"] for n in await db.project_get_networks(user, None)] == [b["id"]]


async def test_counts(db, raw, admin, user):
    await _networks(db, admin, None, "p")
    await db.network_create_safe(admin, {"deleted": True})
    assert await db.network_count(admin) == 2
    assert await db.network_count(get_admin_context("yes")) == 3
    assert await db.network_count(get_admin_context("only")) == 1
    await db.fixed_ip_bulk_create(admin, [
        {"address": "a", "network_id": 1, "reserved": True},
        {"address": "b", "network_id": 1, "reserved": True},
        {"address": "c", "network_id": 1, "reserved": True, "deleted": True},
        {"address": "d", "network_id": 1},
        {"address": "e", "network_id": 2, "reserved": True}])
    assert await db.network_count_reserved_ips(admin, 1) == 2
    assert await db.network_count_reserved_ips(admin, 3) == 0
    for call in (db.network_count(user), db.network_count_reserved_ips(user, 1)):
        with pytest.raises(exceptions.AdminRequired):
            await call


async def test_delete_safe(db, admin):
    net = (await _networks(db, admin, "p"))[0]
    await db.fixed_ip_bulk_create(admin, [
        {"address": "a", "network_id": net["id"], "allocated": True},
        {"address": "b", "network_id": net["id"]},
        {"address": "c", "network_id": net["id"] + 1, "allocated": True}])
    with pytest.raises(exceptions.NetworkInUse) as info:
        await db.network_delete_safe(admin, net["id"])
    assert info.value.kwargs == {"network_id": net["id"], "code": 500}
    await db.fixed_ip_update(admin, "a", {"allocated": False})
    before = await db.fixed_ip_get_by_address(admin, "a")
    assert await db.network_delete_safe(admin, net["id"]) is None
    # the network row is gone for good, its addresses are soft-deleted (updated_at kept)
    with pytest.raises(exceptions.NetworkNotFound):
        await db.network_get(get_admin_context("yes"), net["id"])
    with pytest.raises(exceptions.FixedIpNotFoundForAddress):
        await db.fixed_ip_get_by_address(admin, "a")
    gone = await db.fixed_ip_get_by_address(get_admin_context("yes"), "a")
    assert gone["deleted"] is True and gone["deleted_at"] is not None
    assert gone["updated_at"] == before["updated_at"]
    assert (await db.fixed_ip_get_by_address(admin, "c"))["deleted"] is False
    with pytest.raises(exceptions.NetworkNotFound) as info:
        await db.network_delete_safe(admin, net["id"])
    assert info.value.kwargs == {"network_id": net["id"], "code": 404}


async def test_update_disassociate_and_set_host(db, admin, user):
    mine, theirs, free = await _networks(db, admin, "project1", "project2", None)
    updated = await db.network_update(user, free["id"], {"label": "x", "vlan": "7"})
    assert (updated["label"], updated["vlan"], updated["id"]) == ("x", "7", free["id"])
    assert updated["updated_at"] is not None
    assert (await db.network_get(user, free["id"]))["vlan"] == 7
    with pytest.raises(exceptions.NetworkNotFound) as info:
        await db.network_update(user, theirs["id"], {"label": "x"})
    assert info.value.kwargs == {"network_id": theirs["id"], "code": 404}
    assert await db.network_set_host(admin, mine["id"], "h1") == "h1"
    assert await db.network_set_host(admin, mine["id"], "h2") == "h1"
    assert await db.network_disassociate(admin, mine["id"]) is None
    got = await db.network_get(admin, mine["id"])
    assert (got["project_id"], got["host"]) == (None, None)
    await db.network_update(admin, mine["id"], {"host": ""})
    assert await db.network_set_host(admin, mine["id"], "h3") == "h3"
    for call in (db.network_set_host(admin, 999, "h"), db.network_disassociate(admin, 999)):
        with pytest.raises(exceptions.NetworkNotFound) as info:
            await call
        assert info.value.kwargs == {"network_id": 999, "code": 404}
    await db.network_update(admin, theirs["id"], {"deleted": True})
    with pytest.raises(exceptions.NetworkNotFound):
        await db.network_set_host(get_admin_context("yes"), theirs["id"], "h")
    with pytest.raises(exceptions.AdminRequired):
        await db.network_set_host(user, free["id"], "h")


async def test_lookups_by_bridge_uuid_cidr_instance_and_host(db, admin):
    n1 = await db.network_create_safe(admin, {"bridge": "br1", "cidr": "10.0.0.0/24",
                                              "host": "h1"})
    n2 = await db.network_create_safe(admin, {"bridge": "br1", "cidr_v6": "fd00::/64"})
    n3 = await db.network_create_safe(admin, {"bridge": "br3", "deleted": True,
                                              "cidr": "10.3.0.0/24"})
    assert (await db.network_get_by_bridge(admin, "br1"))["id"] == n1["id"]
    assert (await db.network_get_by_uuid(admin, n2["uuid"]))["id"] == n2["id"]
    assert (await db.network_get_by_cidr(admin, "10.0.0.0/24"))["id"] == n1["id"]
    assert (await db.network_get_by_cidr(admin, "fd00::/64"))["id"] == n2["id"]
    for call, cls, kwargs in (
            (db.network_get_by_bridge(admin, "br3"), exceptions.NetworkNotFoundForBridge,
             {"bridge": "br3"}),
            (db.network_get_by_uuid(admin, n3["uuid"]), exceptions.NetworkNotFoundForUUID,
             {"uuid": n3["uuid"]}),
            (db.network_get_by_cidr(admin, "10.3.0.0/24"), exceptions.NetworkNotFoundForCidr,
             {"cidr": "10.3.0.0/24"})):
        with pytest.raises(cls) as info:
            await call
        assert info.value.kwargs == {**kwargs, "code": 404}
    inst, other = str(uuid.uuid4()), str(uuid.uuid4())
    await db.fixed_ip_bulk_create(admin, [
        {"address": "a", "network_id": n2["id"], "instance_uuid": inst, "host": "h2"},
        {"address": "b", "network_id": n1["id"], "instance_uuid": inst},
        {"address": "c", "network_id": n1["id"], "instance_uuid": inst},
        {"address": "d", "network_id": n3["id"], "instance_uuid": inst, "host": "h2"},
        {"address": "e", "network_id": n2["id"], "instance_uuid": other, "deleted": True}])
    assert (await db.network_get_by_instance(admin, inst))["id"] == n1["id"]
    assert [n["id"] for n in await db.network_get_all_by_instance(admin, inst)] == \
        [n1["id"], n2["id"]]
    for call in (db.network_get_by_instance(admin, other),
                 db.network_get_all_by_instance(admin, other)):
        with pytest.raises(exceptions.NetworkNotFoundForInstance) as info:
            await call
        assert info.value.kwargs == {"instance_id": other, "code": 404}
    assert [n["id"] for n in await db.network_get_all_by_host(admin, "h1")] == [n1["id"]]
    assert [n["id"] for n in await db.network_get_all_by_host(admin, "h2")] == [n2["id"]]
    assert await db.network_get_all_by_host(admin, "h9") == []


async def test_get_associated_fixed_ips(db, raw, admin):
    on_foo = await db.instance_create(admin, {"host": "foo", "hostname": "vm1"})
    gone = await db.instance_create(admin, {"host": "foo"})
    await db.instance_destroy(admin, gone["uuid"])
    vif = await _insert(raw, VirtualInterface, address="aa:bb", instance_uuid=on_foo["uuid"],
                        network_id=42)
    dead_vif = await _insert(raw, VirtualInterface, address="cc:dd", deleted=True,
                             instance_uuid=on_foo["uuid"], network_id=42)
    good = {"network_id": 42, "allocated": True, "instance_uuid": on_foo["uuid"],
            "virtual_interface_id": vif}
    await db.fixed_ip_bulk_create(admin, [
        {**good, "address": "10.0.0.1"},
        {**good, "address": "10.0.0.2", "allocated": False},
        {**good, "address": "10.0.0.3", "virtual_interface_id": dead_vif},
        {**good, "address": "10.0.0.4", "instance_uuid": gone["uuid"]},
        {**good, "address": "10.0.0.5", "deleted": True},
        {**good, "address": "10.0.0.6", "network_id": 43},
        {**good, "address": "10.0.0.7", "virtual_interface_id": None}])
    # network 42 has no row: the networks table is not consulted
    expected = [{"address": "10.0.0.1", "instance_uuid": on_foo["uuid"], "network_id": 42,
                 "vif_id": vif, "vif_address": "aa:bb", "instance_hostname": "vm1",
                 "instance_updated": on_foo["updated_at"],
                 "instance_created": on_foo["created_at"]}]
    assert await db.network_get_associated_fixed_ips(admin, 42) == expected
    assert await db.network_get_associated_fixed_ips(admin, 42, "foo") == expected
    assert await db.network_get_associated_fixed_ips(admin, 42, "bar") == []


# --- PostgreSQL races ------------------------------------------------------------------

CALLERS = 12


async def test_concurrent_associations_never_share_a_network(rpc_client, pg_engine):
    await _wipe(pg_engine)
    admin = get_admin_context()
    free = CALLERS - 2
    for _ in range(free):
        await rpc_client.network_create_safe(admin, {})
    results = await asyncio.gather(*(rpc_client.network_associate(admin, f"p{i}")
                                     for i in range(CALLERS)), return_exceptions=True)
    claimed = [r for r in results if isinstance(r, dict)]
    assert len(claimed) == free, results
    assert len({n["id"] for n in claimed}) == free
    assert all(isinstance(r, exceptions.NoMoreNetworks) for r in results
               if not isinstance(r, dict)), results
    owners = {n["id"]: n["project_id"] for n in await rpc_client.network_get_all(admin)}
    assert owners == {n["id"]: n["project_id"] for n in claimed}


async def test_concurrent_first_builds_of_a_project_share_one_network(rpc_client,
                                                                      pg_engine):
    await _wipe(pg_engine)
    admin = get_admin_context()
    for _ in range(3):
        await rpc_client.network_create_safe(admin, {})
    results = await asyncio.gather(*(rpc_client.project_get_networks(admin, "p1")
                                     for _ in range(CALLERS)))
    assert len({tuple(n["id"] for n in r) for r in results}) == 1, results
    assert len(await rpc_client.project_get_networks(admin, "p1")) == 1


async def test_association_skips_a_network_another_transaction_holds(rpc_client,
                                                                     pg_engine):
    await _wipe(pg_engine)
    admin = get_admin_context()
    first = await rpc_client.network_create_safe(admin, {})
    second = await rpc_client.network_create_safe(admin, {})
    table = Network.__table__
    async with pg_engine.begin() as conn:
        await conn.execute(select(table.c.id).where(table.c.id == first["id"])
                           .with_for_update())
        # Without SKIP LOCKED the call would wait for this transaction; the guard turns
        # that into a failure instead of a hang.
        got = await asyncio.wait_for(rpc_client.network_associate(admin, "p1"), 20)
        assert got["id"] == second["id"]


async def test_concurrent_set_host_has_one_winner(rpc_client, pg_engine):
    await _wipe(pg_engine)
    admin = get_admin_context()
    net = await rpc_client.network_create_safe(admin, {})
    results = await asyncio.gather(*(rpc_client.network_set_host(admin, net["id"], f"h{i}")
                                     for i in range(CALLERS)))
    assert len(set(results)) == 1, results
    assert (await rpc_client.network_get(admin, net["id"]))["host"] == results[0]
