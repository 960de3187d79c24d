"""block_device_mapping_* through the client and on SQLite.

None of these functions needs the instance row, so the tests use bare uuids.
"""

import datetime as dt
import uuid

import pytest

from schemas import exceptions
from schemas.context import RequestContext, get_admin_context

COLUMNS = {"id", "instance_uuid", "device_name", "delete_on_termination", "virtual_name",
           "snapshot_id", "volume_id", "volume_size", "no_device", "connection_info",
           "created_at", "updated_at", "deleted_at", "deleted"}
OLD = dt.datetime(2001, 2, 3, 4, 5, 6)
READ_ALL = get_admin_context("yes")


def _uuid():
    return str(uuid.uuid4())


async def _bdms(db, instance_uuid, context=None):
    return await db.block_device_mapping_get_all_by_instance(context or READ_ALL,
                                                             instance_uuid)


async def test_create_returns_none_and_rows_come_back_as_columns(db, user):
    u = _uuid()
    assert await db.block_device_mapping_create(
        user, {"instance_uuid": u, "device_name": "/dev/vda", "volume_id": "vol-1",
               "unknown": "ignored"}) is None
    await db.block_device_mapping_create(user, {"instance_uuid": u, "device_name": "/dev/vdb"})
    await db.block_device_mapping_create(user, {"instance_uuid": _uuid(),
                                                "device_name": "/dev/vda"})
    rows = await db.block_device_mapping_get_all_by_instance(user, u)
    assert [r["device_name"] for r in rows] == ["/dev/vda", "/dev/vdb"]
    assert set(rows[0]) == COLUMNS
    assert rows[0]["volume_id"] == "vol-1" and rows[0]["delete_on_termination"] is False
    assert rows[0]["updated_at"] is None
    assert await db.block_device_mapping_get_all_by_instance(user, _uuid()) == []
    with pytest.raises(exceptions.DBError):  # device_name is NOT NULL
        await db.block_device_mapping_create(user, {"instance_uuid": u})


async def test_update_sets_columns_moves_updated_at_and_refuses_unknown_keys(db, user):
    u = _uuid()
    await db.block_device_mapping_create(user, {"instance_uuid": u, "device_name": "/dev/vda"})
    [row] = await _bdms(db, u)
    assert await db.block_device_mapping_update(user, row["id"],
                                                {"volume_size": 5, "no_device": True}) is None
    [got] = await _bdms(db, u)
    assert got["volume_size"] == 5 and got["no_device"] is True
    assert got["updated_at"] is not None
    with pytest.raises(exceptions.InvalidInput, match="bogus"):
        await db.block_device_mapping_update(user, row["id"], {"bogus": 1, "volume_size": 9})
    with pytest.raises(exceptions.InvalidInput, match="instance"):
        await db.block_device_mapping_update(user, row["id"], {"instance": {}})
    assert (await _bdms(db, u))[0]["volume_size"] == 5
    # unknown ids are not an error
    assert await db.block_device_mapping_update(user, 999, {"volume_size": 1}) is None
    assert await db.block_device_mapping_update(user, "x", {"volume_size": 1}) is None
    await db.block_device_mapping_update(user, row["id"], {"updated_at": OLD})
    assert (await _bdms(db, u))[0]["updated_at"] == OLD


async def test_update_only_touches_rows_the_context_reads(db, user):
    u = _uuid()
    await db.block_device_mapping_create(user, {"instance_uuid": u, "device_name": "/dev/vda"})
    [row] = await _bdms(db, u)
    await db.block_device_mapping_destroy(user, row["id"])
    await db.block_device_mapping_update(user, row["id"], {"volume_size": 1})
    assert (await _bdms(db, u))[0]["volume_size"] is None
    await db.block_device_mapping_update(RequestContext("user1", "project1", read_deleted="yes"),
                                         row["id"], {"volume_size": 2})
    assert (await _bdms(db, u))[0]["volume_size"] == 2


async def test_update_or_create_updates_the_same_device_or_inserts(db, user):
    u = _uuid()
    values = {"instance_uuid": u, "device_name": "/dev/vdb", "volume_id": "v1"}
    assert await db.block_device_mapping_update_or_create(user, values) is None
    await db.block_device_mapping_update_or_create(user, dict(values, volume_id="v2"))
    await db.block_device_mapping_update_or_create(user, dict(values, device_name="/dev/vdc"))
    rows = await _bdms(db, u, user)
    assert [(r["device_name"], r["volume_id"]) for r in rows] == \
        [("/dev/vdb", "v2"), ("/dev/vdc", "v1")]
    assert rows[0]["updated_at"] is not None and rows[1]["updated_at"] is None
    with pytest.raises(exceptions.InvalidInput, match="device_name"):
        await db.block_device_mapping_update_or_create(user, {"instance_uuid": u})


async def test_update_or_create_keeps_one_swap_and_one_device_per_ephemeral(db, user):
    u, other = _uuid(), _uuid()

    async def put(instance_uuid, device, virtual_name):
        await db.block_device_mapping_update_or_create(
            user, {"instance_uuid": instance_uuid, "device_name": device,
                   "virtual_name": virtual_name, "updated_at": OLD})

    await put(u, "/dev/sdb", "swap")
    await put(u, "/dev/sdc", "ephemeral0")
    await put(u, "/dev/sdd", "ephemeral01")  # not an ephemeral name: never dedup'd
    await put(other, "/dev/sdx", "swap")
    await put(u, "/dev/sde", "swap")
    await put(u, "/dev/sdf", "ephemeral0")
    await put(u, "/dev/sdg", "ephemeral01")
    live = await _bdms(db, u, user)
    assert [r["device_name"] for r in live] == ["/dev/sdd", "/dev/sde", "/dev/sdf",
                                                 "/dev/sdg"]
    gone = [r for r in await _bdms(db, u) if r["deleted"]]
    assert [r["device_name"] for r in gone] == ["/dev/sdb", "/dev/sdc"]
    assert all(r["updated_at"] == OLD and r["deleted_at"] is not None for r in gone)
    assert len(await _bdms(db, other, user)) == 1


async def test_destroy_by_id_keeps_updated_at_and_ignores_missing_ids(db, user):
    u = _uuid()
    await db.block_device_mapping_create(user, {"instance_uuid": u, "device_name": "/dev/vda",
                                                "updated_at": OLD})
    [row] = await _bdms(db, u)
    assert await db.block_device_mapping_destroy(user, row["id"]) is None
    assert await db.block_device_mapping_get_all_by_instance(user, u) == []
    [gone] = await _bdms(db, u)
    assert gone["deleted"] is True and gone["deleted_at"] is not None
    assert gone["updated_at"] == OLD
    only = await db.block_device_mapping_get_all_by_instance(get_admin_context("only"), u)
    assert [r["id"] for r in only] == [row["id"]]
    assert await db.block_device_mapping_destroy(user, 999) is None
    assert await db.block_device_mapping_destroy(user, "nope") is None


async def test_destroy_by_instance_and_device_or_volume(db, user):
    u, other = _uuid(), _uuid()
    for device, volume in (("/dev/vda", "v1"), ("/dev/vdb", "v2"), ("/dev/vdc", "v2")):
        await db.block_device_mapping_create(user, {"instance_uuid": u, "device_name": device,
                                                    "volume_id": volume})
    await db.block_device_mapping_create(user, {"instance_uuid": other,
                                                "device_name": "/dev/vda", "volume_id": "v2"})
    assert await db.block_device_mapping_destroy_by_instance_and_device(
        user, u, "/dev/vda") is None
    assert [r["device_name"] for r in await _bdms(db, u, user)] == ["/dev/vdb", "/dev/vdc"]
    assert await db.block_device_mapping_destroy_by_instance_and_volume(user, u, "v2") is None
    assert await _bdms(db, u, user) == []
    assert len(await _bdms(db, other, user)) == 1
    assert await db.block_device_mapping_destroy_by_instance_and_volume(user, u, "v9") is None


async def test_anonymous_context_is_refused(db):
    anonymous = RequestContext(None, None)
    with pytest.raises(exceptions.NotAuthorized):
        await db.block_device_mapping_create(anonymous, {"instance_uuid": _uuid(),
                                                         "device_name": "/dev/vda"})
    with pytest.raises(exceptions.NotAuthorized):
        await db.block_device_mapping_get_all_by_instance(anonymous, _uuid())
