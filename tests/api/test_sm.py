"""sm_backend_conf_*, sm_flavor_*, sm_volume_* (api-network-quota-storage.md §5.9-5.11)
through the client (RabbitMQ -> conductor -> PostgreSQL) and on SQLite."""

import asyncio

import pytest

from schemas import exceptions
from schemas.context import RequestContext, get_admin_context
from tests.conftest import _wipe


def _backend(**values):
    return {"flavor_id": 1, "sr_uuid": "sr-1", "sr_type": "nfs",
            "config_params": "server=a", **values}


async def test_backend_create_get_and_duplicates(db, admin):
    made = await db.sm_backend_conf_create(admin, _backend())
    assert isinstance(made["id"], int) and made["sr_type"] == "nfs"
    assert made["deleted"] is False and made["created_at"] is not None
    assert await db.sm_backend_conf_get(admin, made["id"]) == made
    with pytest.raises(exceptions.Duplicate) as info:
        await db.sm_backend_conf_create(admin, _backend(sr_uuid="sr-2"))
    assert info.value.kwargs == {"code": 500} and type(info.value) is exceptions.Duplicate
    # deleted rows count too, for duplicates and for every lookup
    gone = await db.sm_backend_conf_create(admin, _backend(config_params="x", deleted=True))
    with pytest.raises(exceptions.Duplicate):
        await db.sm_backend_conf_create(admin, _backend(config_params="x"))
    assert (await db.sm_backend_conf_get(admin, gone["id"]))["deleted"] is True
    assert [b["id"] for b in await db.sm_backend_conf_get_all(admin)] == \
        [made["id"], gone["id"]]
    with pytest.raises(exceptions.InvalidInput):
        await db.sm_backend_conf_create(admin, {"flavor_id": 1})
    with pytest.raises(exceptions.NotFound) as missing:
        await db.sm_backend_conf_get(admin, 999)
    assert type(missing.value) is exceptions.NotFound
    assert missing.value.kwargs == {"code": 404} and "999" in str(missing.value)


async def test_backend_by_sr_update_delete(db, admin):
    first = await db.sm_backend_conf_create(admin, _backend())
    none_sr = await db.sm_backend_conf_create(admin, _backend(sr_uuid=None,
                                                              config_params="b"))
    assert (await db.sm_backend_conf_get_by_sr(admin, "sr-1"))["id"] == first["id"]
    assert (await db.sm_backend_conf_get_by_sr(admin, None))["id"] == none_sr["id"]
    with pytest.raises(exceptions.NotFound):
        await db.sm_backend_conf_get_by_sr(admin, "sr-9")
    updated = await db.sm_backend_conf_update(admin, first["id"], {"sr_type": "iscsi",
                                                                   "flavor_id": "2"})
    assert updated["sr_type"] == "iscsi" and updated["flavor_id"] == "2"
    got = await db.sm_backend_conf_get(admin, first["id"])
    assert got["flavor_id"] == 2 and got["updated_at"] is not None
    with pytest.raises(exceptions.NotFound):
        await db.sm_backend_conf_update(admin, 999, {"sr_type": "x"})
    assert await db.sm_backend_conf_delete(admin, first["id"]) is None
    with pytest.raises(exceptions.NotFound):
        await db.sm_backend_conf_get(admin, first["id"])
    assert await db.sm_backend_conf_delete(admin, 12345) is None
    # hard delete: gone whatever read_deleted says
    assert [b["id"] for b in await db.sm_backend_conf_get_all(get_admin_context("yes"))] \
        == [none_sr["id"]]


async def test_flavors(db, admin):
    made = await db.sm_flavor_create(admin, {"label": "gold", "description": "fast"})
    assert isinstance(made["id"], int) and made["label"] == "gold"
    assert await db.sm_flavor_get(admin, made["id"]) == made
    assert await db.sm_flavor_get_by_label(admin, "gold") == made
    with pytest.raises(exceptions.Duplicate) as dup:
        await db.sm_flavor_create(admin, {"label": "gold"})
    assert dup.value.kwargs == {"code": 500}
    old = await db.sm_flavor_create(admin, {"label": "old", "deleted": True})
    with pytest.raises(exceptions.Duplicate):
        await db.sm_flavor_create(admin, {"label": "old"})
    assert (await db.sm_flavor_get_by_label(admin, "old"))["id"] == old["id"]
    updated = await db.sm_flavor_update(admin, made["id"], {"description": "faster"})
    assert updated["description"] == "faster" and updated["label"] == "gold"
    assert (await db.sm_flavor_get(admin, made["id"]))["description"] == "faster"
    assert [f["id"] for f in await db.sm_flavor_get_all(admin)] == [made["id"], old["id"]]
    for call in (db.sm_flavor_get(admin, 999), db.sm_flavor_get(admin, "nope"),
                 db.sm_flavor_get_by_label(admin, "silver"),
                 db.sm_flavor_update(admin, 999, {"label": "x"})):
        with pytest.raises(exceptions.NotFound) as info:
            await call
        assert info.value.kwargs == {"code": 404}
    assert await db.sm_flavor_delete(admin, made["id"]) is None
    assert await db.sm_flavor_delete(admin, made["id"]) is None
    with pytest.raises(exceptions.NotFound):
        await db.sm_flavor_get(admin, made["id"])
    with pytest.raises(exceptions.InvalidInput):
        await db.sm_flavor_create(admin, {"description": "no label"})


async def test_backends_and_flavors_are_admin_only(db, user):
    for call in (db.sm_backend_conf_create(user, _backend()), db.sm_backend_conf_get_all(user),
                 db.sm_backend_conf_get_by_sr(user, "sr-1"), db.sm_flavor_get_all(user),
                 db.sm_flavor_create(user, {"label": "x"}), db.sm_flavor_delete(user, 1)):
        with pytest.raises(exceptions.AdminRequired):
            await call


async def test_sm_volumes_run_for_any_context(db, admin):
    anonymous = RequestContext(None, None)
    for vol_id in ("vol-1", "vol-2"):
        await db.volume_create(admin, {"id": vol_id})
    made = await db.sm_volume_create(anonymous, {"id": "vol-1", "backend_id": "7",
                                                 "vdi_uuid": "vdi-1"})
    assert made["id"] == "vol-1" and made["backend_id"] == "7"
    assert (await db.sm_volume_get(anonymous, "vol-1"))["backend_id"] == 7
    await db.sm_volume_create(anonymous, {"id": "vol-2", "backend_id": 1, "deleted": True})
    assert [v["id"] for v in await db.sm_volume_get_all(anonymous)] == ["vol-1", "vol-2"]
    updated = await db.sm_volume_update(anonymous, "vol-1", {"vdi_uuid": "vdi-9"})
    assert updated["id"] == "vol-1" and updated["vdi_uuid"] == "vdi-9"
    assert (await db.sm_volume_get(anonymous, "vol-1"))["vdi_uuid"] == "vdi-9"
    assert (await db.sm_volume_get(anonymous, "vol-2"))["deleted"] is True
    for call in (db.sm_volume_get(anonymous, "vol-3"),
                 db.sm_volume_update(anonymous, "vol-3", {"vdi_uuid": "x"})):
        with pytest.raises(exceptions.NotFound) as info:
            await call
        assert info.value.kwargs == {"code": 404} and "vol-3" in str(info.value)
    assert await db.sm_volume_delete(anonymous, "vol-1") is None
    assert await db.sm_volume_delete(anonymous, "vol-1") is None
    assert [v["id"] for v in await db.sm_volume_get_all(anonymous)] == ["vol-2"]


async def test_concurrent_creates_of_one_label_make_one_row(rpc_client, pg_engine):
    await _wipe(pg_engine)
    admin = get_admin_context()
    results = await asyncio.gather(
        *(rpc_client.sm_flavor_create(admin, {"label": "race"}) for _ in range(5)),
        *(rpc_client.sm_backend_conf_create(admin, _backend()) for _ in range(5)),
        return_exceptions=True)
    made = [r for r in results if isinstance(r, dict)]
    assert len(made) == 2, results
    assert all(type(r) is exceptions.Duplicate for r in results if not isinstance(r, dict))
    assert len(await rpc_client.sm_flavor_get_all(admin)) == 1
    assert len(await rpc_client.sm_backend_conf_get_all(admin)) == 1
