"""virtual_interface_* (api-network-quota-storage.md §3.4) through the client (RabbitMQ ->
conductor -> PostgreSQL) and on SQLite."""

import uuid

import pytest

from schemas import exceptions
from schemas.context import RequestContext, get_admin_context

COLUMNS = {"id", "address", "network_id", "instance_uuid", "uuid", "created_at",
           "updated_at", "deleted_at", "deleted"}
ANONYMOUS = RequestContext(None, None)


async def _vif(db, context, instance_uuid, address, **values):
    return await db.virtual_interface_create(
        context, {"address": address, "instance_uuid": instance_uuid, **values})


async def test_create_and_the_single_row_getters_see_deleted_rows(db, user):
    inst = str(uuid.uuid4())
    vif = await _vif(db, user, inst, "aa:00", nonsense=1)  # TESTED: no network needed
    assert set(vif) == COLUMNS | {"nonsense"} and vif["id"] > 0  # echoed, not stored
    assert (vif["address"], vif["network_id"], vif["deleted"]) == ("aa:00", None, False)
    dead = await _vif(db, user, inst, "aa:01", network_id=7, uuid="vif-1", deleted=True)
    del vif["nonsense"]
    assert await db.virtual_interface_get(user, vif["id"]) == vif
    assert (await db.virtual_interface_get(user, dead["id"]))["deleted"] is True
    assert (await db.virtual_interface_get_by_address(user, "aa:01"))["id"] == dead["id"]
    assert (await db.virtual_interface_get_by_uuid(user, "vif-1"))["id"] == dead["id"]
    assert (await db.virtual_interface_get_by_instance_and_network(
        user, inst, 7))["id"] == dead["id"]
    # network_id None matches the VIF without a network
    assert (await db.virtual_interface_get_by_instance_and_network(
        user, inst, None))["id"] == vif["id"]
    assert await db.virtual_interface_get_by_instance_and_network(user, inst, 8) is None
    for missing in (db.virtual_interface_get(user, 999), db.virtual_interface_get(user, "x"),
                    db.virtual_interface_get_by_address(user, "ff:ff"),
                    db.virtual_interface_get_by_uuid(user, "nope")):
        assert await missing is None
    # no project scoping, deleted rows included whatever the context says
    everything = await db.virtual_interface_get_all(RequestContext("u", "other"))
    assert [v["id"] for v in everything] == [vif["id"], dead["id"]]
    assert [v["id"] for v in await db.virtual_interface_get_all(
        get_admin_context("only"))] == [vif["id"], dead["id"]]
    with pytest.raises(exceptions.NotAuthorized):
        await db.virtual_interface_get_all(ANONYMOUS)


async def test_create_failures_are_virtual_interface_create_exception(db, user):
    inst = str(uuid.uuid4())
    first = await _vif(db, user, inst, "aa:00")
    for values in ({"address": "aa:00", "instance_uuid": inst},  # duplicate MAC
                   {"address": "aa:02"},  # instance_uuid is NOT NULL
                   {"address": "aa:03", "instance_uuid": None},
                   {"id": first["id"], "address": "aa:04", "instance_uuid": inst}):
        with pytest.raises(exceptions.VirtualInterfaceCreateException) as info:
            await db.virtual_interface_create(user, values)
        assert info.value.kwargs == {"code": 500}
    with pytest.raises(exceptions.InvalidInput):
        await db.virtual_interface_create(user, {"address": "aa:05", "instance_uuid": inst,
                                                 "network_id": "net"})
    assert [v["address"] for v in await db.virtual_interface_get_all(user)] == ["aa:00"]
    # the sequence is not disturbed by the failures
    assert (await _vif(db, user, inst, "aa:06"))["id"] > first["id"]


async def test_by_instance_checks_the_instance_and_deletes_are_hard(db_config, db, admin, user,
                                                                   monkeypatch):
    # reads across projects as 2012.2 answers them (strict isolation: test_isolation.py)
    monkeypatch.setattr(db_config, "isolation", "nova")
    mine = await db.instance_create(admin, {"project_id": "project1"})
    theirs = await db.instance_create(admin, {"project_id": "project2"})
    a = await _vif(db, user, mine["uuid"], "aa:00", network_id=1)
    b = await _vif(db, user, mine["uuid"], "aa:01", deleted=True)
    c = await _vif(db, user, theirs["uuid"], "aa:02")
    assert [v["id"] for v in await db.virtual_interface_get_by_instance(
        user, mine["uuid"])] == [a["id"], b["id"]]
    missing = str(uuid.uuid4())
    for instance_id in (theirs["uuid"], missing, None):
        for call in (db.virtual_interface_get_by_instance,
                     db.virtual_interface_delete_by_instance):
            with pytest.raises(exceptions.InstanceNotFound) as info:
                await call(user, instance_id)
            assert info.value.kwargs == {"instance_id": instance_id, "code": 404}
    # no instance check here: any instance, any project
    assert (await db.virtual_interface_get_by_instance_and_network(
        user, theirs["uuid"], None))["id"] == c["id"]
    # a deleted instance is found only when the context reads deleted rows
    await db.instance_destroy(admin, theirs["uuid"])
    with pytest.raises(exceptions.InstanceNotFound):
        await db.virtual_interface_get_by_instance(admin, theirs["uuid"])
    assert [v["id"] for v in await db.virtual_interface_get_by_instance(
        get_admin_context("yes"), theirs["uuid"])] == [c["id"]]
    assert await db.virtual_interface_delete_by_instance(user, mine["uuid"]) is None
    assert await db.virtual_interface_get(user, a["id"]) is None
    assert await db.virtual_interface_get(user, b["id"]) is None
    assert await db.virtual_interface_get_by_instance(user, mine["uuid"]) == []
    assert await db.virtual_interface_delete(user, c["id"]) is None
    assert await db.virtual_interface_delete(user, c["id"]) is None  # DEFECT→: a no-op
    assert await db.virtual_interface_delete(user, "x") is None
    assert await db.virtual_interface_get_all(admin) == []
    # the address is free again after a hard delete
    assert (await _vif(db, user, mine["uuid"], "aa:00"))["address"] == "aa:00"
