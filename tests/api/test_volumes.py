"""volume_* and volume_metadata_* (api-network-quota-storage.md §5.1, §5.2) through the
client (RabbitMQ -> conductor -> PostgreSQL) and on SQLite; the volume services' ordering
(api-compute.md §3.2) now that volumes exist."""

import asyncio
import datetime as dt
import uuid

import pytest
from sqlalchemy import insert, select

from conductor.db.models import IscsiTarget, VolumeMetadata
from schemas import exceptions
from schemas.context import RequestContext, get_admin_context
from tests.conftest import _wipe

META = VolumeMetadata.__table__
MINE = {"project_id": "project1", "user_id": "user1"}
OLD = dt.datetime(2001, 1, 1, 12, 0, 0)


@pytest.fixture
def raw(_api_backend, db):
    """The engine behind ``db`` (already emptied), for rows no function of ours shows."""
    return _api_backend[0]


async def _meta_rows(engine, volume_id):
    async with engine.connect() as conn:
        result = await conn.execute(select(META).where(META.c.volume_id == volume_id)
                                    .order_by(META.c.id))
        return [dict(r) for r in result.mappings()]


async def test_create_and_get_return_the_row_with_metadata_and_type(db, admin, user):
    vtype = await db.volume_type_create(admin, {"name": "fast"})
    vol = await db.volume_create(user, {**MINE, "size": "5", "volume_type_id": vtype["id"],
                                        "metadata": {"a": "1", "n": 5}, "bogus": 1})
    assert uuid.UUID(vol["id"]) and vol["name"] == f"volume-{vol['id']}"
    assert vol["size"] == 5 and "bogus" not in vol and "metadata" not in vol
    assert vol["created_at"] is not None and vol["updated_at"] is None
    assert vol["deleted"] is False and "iscsi_target" not in vol
    # read back as volume_get reads it: stored text, not what the caller sent
    assert {m["key"]: m["value"] for m in vol["volume_metadata"]} == {"a": "1", "n": "5"}
    assert {"id", "volume_id", "deleted", "created_at"} <= set(vol["volume_metadata"][0])
    assert vol["volume_type"]["name"] == "fast" and "extra_specs" not in vol["volume_type"]
    assert await db.volume_get(user, vol["id"]) == vol
    # an explicit id is kept; a deleted type is not shown
    mine = await db.volume_create(admin, {"id": "vol-1", "volume_type_id": vtype["id"]})
    assert mine["id"] == "vol-1" and mine["name"] == "volume-vol-1"
    await db.volume_type_destroy(admin, "fast")
    assert (await db.volume_get(admin, "vol-1"))["volume_type"] is None
    with pytest.raises(exceptions.DBError):
        await db.volume_create(admin, {"id": "vol-1"})
    with pytest.raises(exceptions.InvalidInput, match="volumes.size"):
        await db.volume_create(admin, {"size": "big"})
    with pytest.raises(exceptions.InvalidInput):
        await db.volume_create(admin, {"metadata": ["a"]})
    assert len(await db.volume_get_all(admin)) == 2


async def test_project_scoping_and_access_levels(db, admin, user, other_user, db_config,
                                                 monkeypatch):
    # 2012.2's create into another project (strict isolation refuses it with
    # NotAuthorized: tests/api/test_isolation_matrix.py)
    monkeypatch.setattr(db_config, "isolation", "nova")
    vol = await db.volume_create(user, dict(MINE))
    with pytest.raises(exceptions.VolumeNotFound) as info:
        await db.volume_get(other_user, vol["id"])
    assert info.value.kwargs == {"volume_id": vol["id"], "code": 404}
    # creating for another project fails on the read-back and keeps nothing
    with pytest.raises(exceptions.VolumeNotFound):
        await db.volume_create(user, {"project_id": "project2"})
    assert [v["id"] for v in await db.volume_get_all(admin)] == [vol["id"]]
    assert [v["id"] for v in await db.volume_get_all_by_project(user, "project1")] == \
        [vol["id"]]
    with pytest.raises(exceptions.NotAuthorized):
        await db.volume_get_all_by_project(user, "project2")
    assert await db.volume_get_all_by_project(admin, "project2") == []
    with pytest.raises(exceptions.VolumeNotFound):
        await db.volume_update(other_user, vol["id"], {"size": 1})
    for call in (db.volume_get_all(user), db.volume_get_all_by_host(user, "h"),
                 db.volume_get_all_by_instance_uuid(user, "u"),
                 db.volume_destroy(user, vol["id"]), db.volume_detached(user, vol["id"]),
                 db.volume_attached(user, vol["id"], str(uuid.uuid4()), "/dev/vdb"),
                 db.volume_data_get_for_project(user, "project1")):
        with pytest.raises(exceptions.AdminRequired):
            await call
    with pytest.raises(exceptions.NotAuthorized):
        await db.volume_get(RequestContext(None, None), vol["id"])
    with pytest.raises(exceptions.VolumeNotFound):
        await db.volume_get(admin, {"not": "an id"})


async def test_listings_follow_read_deleted(db, admin):
    inst = str(uuid.uuid4())
    a = await db.volume_create(admin, {"id": "a", "host": "h1", "project_id": "p",
                                       "instance_uuid": inst})
    b = await db.volume_create(admin, {"id": "b", "host": "h1", "project_id": "p",
                                       "instance_uuid": inst})
    await db.volume_create(admin, {"id": "c", "host": "h2"})
    await db.volume_destroy(admin, b["id"])
    yes, only = get_admin_context("yes"), get_admin_context("only")
    assert [v["id"] for v in await db.volume_get_all(admin)] == ["a", "c"]
    assert [v["id"] for v in await db.volume_get_all(yes)] == ["a", "b", "c"]
    assert [v["id"] for v in await db.volume_get_all_by_host(only, "h1")] == ["b"]
    assert [v["id"] for v in await db.volume_get_all_by_host(yes, "h1")] == ["a", "b"]
    assert [v["id"] for v in await db.volume_get_all_by_project(yes, "p")] == ["a", "b"]
    # by instance: live volumes only, whatever the context says
    by_instance = await db.volume_get_all_by_instance_uuid(yes, inst)
    assert [v["id"] for v in by_instance] == [a["id"]]
    assert "volume_metadata" in by_instance[0] and "volume_type" in by_instance[0]
    assert await db.volume_get_all_by_instance_uuid(admin, str(uuid.uuid4())) == []
    assert (await db.volume_get(yes, "b"))["deleted"] is True
    with pytest.raises(exceptions.VolumeNotFound):
        await db.volume_get(admin, "b")


async def test_update_replaces_metadata_and_echoes_values(db, raw, user):
    vol = await db.volume_create(user, {**MINE, "metadata": {"a": "1", "b": "2"}})
    same = await db.volume_update(user, vol["id"], {"display_name": None, "metadata": None})
    assert same["updated_at"] is None  # nothing changed, no UPDATE
    assert {m["key"] for m in same["volume_metadata"]} == {"a", "b"}
    updated = await db.volume_update(user, vol["id"], {"size": "3", "bogus": 1,
                                                       "metadata": {"b": "20", "c": "3"}})
    assert updated["size"] == "3" and updated["updated_at"] is not None
    assert updated["name"] == vol["name"] and updated["bogus"] == 1  # echoed, not stored
    assert {m["key"]: m["value"] for m in updated["volume_metadata"]} == {"b": "20", "c": "3"}
    assert (await db.volume_get(user, vol["id"]))["size"] == 3
    # the replaced key is flag-deleted only (deleted_at stays NULL), as Nova saves it
    gone = [m for m in await _meta_rows(raw, vol["id"]) if m["key"] == "a"]
    assert [(m["deleted"], m["deleted_at"]) for m in gone] == [(True, None)]
    cleared = await db.volume_update(user, vol["id"], {"metadata": {}})
    assert cleared["volume_metadata"] == []
    assert await db.volume_metadata_get(user, vol["id"]) == {}
    with pytest.raises(exceptions.VolumeNotFound) as info:
        await db.volume_update(user, "missing", {"size": 1})
    assert info.value.kwargs == {"volume_id": "missing", "code": 404}
    with pytest.raises(exceptions.InvalidInput):
        await db.volume_update(user, vol["id"], {"size": "lots"})


async def test_destroy_returns_the_deleted_volume_and_frees_its_target(db, raw, admin):
    vol = await db.volume_create(admin, {"host": "h", "status": "available",
                                         "metadata": {"k": "v"}})
    targets = IscsiTarget.__table__
    async with raw.begin() as conn:
        await conn.execute(insert(targets).values(target_num=1, host="h",
                                                  volume_id=vol["id"]))
    gone = await db.volume_destroy(admin, vol["id"])
    assert gone["deleted"] is True and gone["deleted_at"] is not None
    assert gone["updated_at"] is None and gone["status"] == "available"
    assert [m["key"] for m in gone["volume_metadata"]] == ["k"]
    assert gone["name"] == vol["name"]
    stored = await db.volume_get(get_admin_context("yes"), vol["id"])
    assert stored["deleted_at"] == gone["deleted_at"] and stored["updated_at"] is None
    assert stored["volume_metadata"] == []
    meta = await _meta_rows(raw, vol["id"])
    assert [(m["deleted"], m["updated_at"]) for m in meta] == [(True, None)]
    async with raw.connect() as conn:
        target = (await conn.execute(select(targets))).mappings().one()
    assert target["volume_id"] is None and target["target_num"] == 1
    with pytest.raises(exceptions.VolumeNotFound):
        await db.volume_destroy(admin, vol["id"])


async def test_attach_and_detach(db, admin):
    vol = await db.volume_create(admin, {"status": "available"})
    inst = str(uuid.uuid4())
    assert await db.volume_attached(admin, vol["id"], inst, "/dev/vdb") is None
    got = await db.volume_get(admin, vol["id"])
    assert (got["status"], got["attach_status"], got["mountpoint"], got["instance_uuid"]) == \
        ("in-use", "attached", "/dev/vdb", inst)
    attached_at = got["attach_time"]
    assert attached_at is not None
    assert await db.volume_detached(admin, vol["id"]) is None
    got = await db.volume_get(admin, vol["id"])
    assert (got["status"], got["attach_status"], got["mountpoint"], got["instance_uuid"]) == \
        ("available", "detached", None, None)
    assert got["attach_time"] == attached_at
    with pytest.raises(exceptions.InvalidUUID) as bad:
        await db.volume_attached(admin, vol["id"], "not-a-uuid", "/dev/vdb")
    assert str(bad.value) == "not-a-uuid" and bad.value.kwargs == {"code": 400}
    for call in (db.volume_attached(admin, "missing", inst, "/dev/vdb"),
                 db.volume_detached(admin, "missing")):
        with pytest.raises(exceptions.VolumeNotFound) as info:
            await call
        assert info.value.kwargs == {"volume_id": "missing", "code": 404}


async def _window(db, context, *args):
    return [v["id"] for v in await db.volume_get_active_by_window(context, *args)]


async def test_data_for_project_and_active_by_window(db, admin, user):
    assert await db.volume_data_get_for_project(admin, "project1") == (0, 0)
    yes = get_admin_context("yes")
    t = [dt.datetime(2012, 1, d) for d in range(1, 6)]
    live = await db.volume_create(admin, {**MINE, "id": "live", "size": 2,
                                          "created_at": t[1]})
    await db.volume_create(admin, {**MINE, "id": "late", "size": 3, "created_at": t[3]})
    await db.volume_create(yes, {**MINE, "id": "gone", "size": 50, "created_at": t[0],
                                 "deleted": True, "deleted_at": t[2]})
    await db.volume_create(admin, {"id": "other", "project_id": "p2", "created_at": t[0]})
    result = await db.volume_data_get_for_project(admin, "project1")
    assert result == (2, 5) and isinstance(result, tuple)
    # no project scoping and no deleted filter, even for a user context
    assert await _window(db, RequestContext("u", "p9"), t[2]) == ["late", "live", "other"]
    assert await _window(db, user, t[1]) == ["gone", "late", "live", "other"]
    assert await _window(db, user, t[1], t[2], "project1") == ["gone", "live"]
    row = (await db.volume_get_active_by_window(admin, t[4], None, "project1"))[1]
    assert row["id"] == live["id"] and row["name"] == "volume-live"
    assert "volume_metadata" not in row and "volume_type" not in row
    assert [v["id"] for v in await db.volume_get_active_by_window(admin, None)] == \
        ["late", "live", "other"]
    with pytest.raises(exceptions.InvalidInput):
        await db.volume_get_active_by_window(admin, "yesterday")


async def test_metadata_get_delete_update(db, raw, user, other_user):
    vol = await db.volume_create(user, {**MINE, "metadata": {"a": "1", "b": "2"}})
    assert await db.volume_metadata_get(user, vol["id"]) == {"a": "1", "b": "2"}
    assert await db.volume_metadata_update(user, vol["id"], {"b": 3, "c": "4"}, False) \
        is None
    assert await db.volume_metadata_get(user, vol["id"]) == {"a": "1", "b": "3", "c": "4"}
    assert await db.volume_metadata_delete(user, vol["id"], "a") is None
    await db.volume_metadata_delete(user, vol["id"], "absent")
    assert await db.volume_metadata_get(user, vol["id"]) == {"b": "3", "c": "4"}
    deleted = [m for m in await _meta_rows(raw, vol["id"]) if m["key"] == "a"]
    assert deleted[0]["deleted"] is True and deleted[0]["deleted_at"] is not None
    assert deleted[0]["updated_at"] is None  # bulk soft delete keeps updated_at
    await db.volume_metadata_update(user, vol["id"], {"c": "5"}, True)
    assert await db.volume_metadata_get(user, vol["id"]) == {"c": "5"}
    # a deleted key comes back as a new row
    await db.volume_metadata_update(user, vol["id"], {"a": "again"}, False)
    assert await db.volume_metadata_get(user, vol["id"]) == {"a": "again", "c": "5"}
    for call in (db.volume_metadata_get(other_user, vol["id"]),
                 db.volume_metadata_delete(other_user, vol["id"], "c"),
                 db.volume_metadata_update(other_user, vol["id"], {"x": "y"}, False),
                 db.volume_metadata_get(user, "missing")):
        with pytest.raises(exceptions.VolumeNotFound) as info:
            await call
        assert set(info.value.kwargs) == {"volume_id", "code"}
    with pytest.raises(exceptions.InvalidInput):
        await db.volume_metadata_update(user, vol["id"], ["x"], False)
    assert await db.volume_metadata_get(user, vol["id"]) == {"a": "again", "c": "5"}


async def test_get_by_ec2_id_is_declared_only(db, admin):
    with pytest.raises(exceptions.RemoteError) as info:
        await db.volume_get_by_ec2_id(admin, 1)
    assert info.value.exc_type == "NotImplementedError"


async def test_volume_services_sorted_by_live_gigabytes(db, admin):
    async def service(host, **values):
        return await db.service_create(admin, {"host": host, "binary": "nova-volume",
                                               "topic": "volume", **values})

    busy, idle, light = await service("busy"), await service("idle"), await service("light")
    await service("off", disabled=True)
    await db.service_create(admin, {"host": "idle", "topic": "compute"})
    for size in (4, 6):
        await db.volume_create(admin, {"host": "busy", "size": size})
    await db.volume_create(admin, {"host": "light", "size": 1})
    gone = await db.volume_create(admin, {"host": "light", "size": 100})
    await db.volume_destroy(admin, gone["id"])
    await db.volume_create(admin, {"host": "off", "size": 1})
    result = await db.service_get_all_volume_sorted(admin)
    assert [(s["id"], gigabytes) for s, gigabytes in result] == \
        [(idle["id"], 0), (light["id"], 1), (busy["id"], 10)]
    assert isinstance(result[0], tuple)


async def test_concurrent_metadata_updates_of_one_key_make_one_row(rpc_client, pg_engine):
    await _wipe(pg_engine)
    user = RequestContext("user1", "project1")
    vol = await rpc_client.volume_create(user, dict(MINE))
    await asyncio.gather(*(rpc_client.volume_metadata_update(user, vol["id"], {"k": str(i)},
                                                             False)
                           for i in range(10)))
    rows = await _meta_rows(pg_engine, vol["id"])
    assert len(rows) == 1 and rows[0]["key"] == "k"
    assert await rpc_client.volume_metadata_get(user, vol["id"]) == {"k": rows[0]["value"]}
