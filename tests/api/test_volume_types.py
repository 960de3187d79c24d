"""volume_type_* and their extra specs (api-network-quota-storage.md §5.3) through the
client (RabbitMQ -> conductor -> PostgreSQL) and on SQLite."""

import asyncio

import pytest
from sqlalchemy import select

from conductor.db.models import VolumeTypeExtraSpecs, VolumeTypes
from schemas import exceptions
from schemas.context import RequestContext, get_admin_context
from tests.conftest import _wipe

SPECS = VolumeTypeExtraSpecs.__table__
TYPES = VolumeTypes.__table__


@pytest.fixture
def raw(_api_backend, db):
    """The engine behind ``db`` (already emptied)."""
    return _api_backend[0]


async def _rows(engine, table, *where):
    async with engine.connect() as conn:
        result = await conn.execute(select(table).where(*where).order_by(table.c.id))
        return [dict(r) for r in result.mappings()]


async def test_create_returns_a_type_dict_and_getters_find_it(db, admin, user):
    made = await db.volume_type_create(admin, {"name": "gold", "bogus": 1,
                                               "extra_specs": {"iops": 100, "tier": "1"}})
    assert made["id"] > 0 and made["name"] == "gold" and made["deleted"] is False
    assert made["extra_specs"] == {"iops": 100, "tier": "1"} and made["bogus"] == 1
    got = await db.volume_type_get(user, made["id"])
    assert "bogus" not in got
    assert got["extra_specs"] == {"iops": "100", "tier": "1"}
    assert {k: got[k] for k in ("id", "name", "created_at", "updated_at")} == \
        {k: made[k] for k in ("id", "name", "created_at", "updated_at")}
    assert await db.volume_type_get_by_name(user, "gold") == got
    plain = await db.volume_type_create(admin, {"name": "plain"})
    assert plain["extra_specs"] == {}
    assert (await db.volume_type_get(admin, str(plain["id"])))["name"] == "plain"
    with pytest.raises(exceptions.VolumeTypeNotFound) as info:
        await db.volume_type_get(user, 999)
    assert info.value.kwargs == {"volume_type_id": 999, "code": 404}
    with pytest.raises(exceptions.VolumeTypeNotFound):
        await db.volume_type_get(user, "x")
    with pytest.raises(exceptions.VolumeTypeNotFoundByName) as by_name:
        await db.volume_type_get_by_name(user, "silver")
    assert by_name.value.kwargs == {"volume_type_name": "silver", "code": 404}
    assert isinstance(by_name.value, exceptions.VolumeTypeNotFound)


async def test_create_refuses_a_visible_name_and_wraps_bad_rows(db, admin):
    await db.volume_type_create(admin, {"name": "gold"})
    with pytest.raises(exceptions.VolumeTypeExists) as info:
        await db.volume_type_create(admin, {"name": "gold", "extra_specs": {"a": "b"}})
    assert info.value.kwargs == {"name": "gold", "code": 500}
    assert isinstance(info.value, exceptions.Duplicate)
    with pytest.raises(exceptions.DBError) as bad:
        await db.volume_type_create(admin, {"name": "x" * 300})
    assert "volume_types.name" in str(bad.value) and bad.value.kwargs == {"code": 500}
    with pytest.raises(exceptions.DBError):
        await db.volume_type_create(admin, {"name": "specs", "extra_specs": ["a"]})
    with pytest.raises(exceptions.InvalidInput):
        await db.volume_type_create(admin, {"extra_specs": {}})
    assert list(await db.volume_type_get_all(admin)) == ["gold"]
    # a soft-deleted name can be reused, unless the context reads deleted rows
    await db.volume_type_destroy(admin, "gold")
    with pytest.raises(exceptions.VolumeTypeExists):
        await db.volume_type_create(get_admin_context("yes"), {"name": "gold"})
    again = await db.volume_type_create(admin, {"name": "gold"})
    assert (await db.volume_type_get_by_name(admin, "gold"))["id"] == again["id"]


async def test_get_all_is_keyed_by_name_and_inactive_includes_deleted(db, admin, user):
    b = await db.volume_type_create(admin, {"name": "b", "extra_specs": {"k": "v"}})
    a = await db.volume_type_create(admin, {"name": "a"})
    await db.volume_type_create(admin, {"name": "c"})
    await db.volume_type_destroy(admin, "c")
    everything = await db.volume_type_get_all(user)
    assert list(everything) == ["a", "b"]
    assert everything["b"]["extra_specs"] == {"k": "v"} and everything["b"]["id"] == b["id"]
    assert everything["a"]["extra_specs"] == {} and everything["a"]["id"] == a["id"]
    assert sorted(await db.volume_type_get_all(user, inactive=True)) == ["a", "b", "c"]
    assert list(await db.volume_type_get_all(get_admin_context("only"))) == ["a", "b"]
    # with duplicate names (one deleted) the row read last wins
    newer = await db.volume_type_create(admin, {"name": "c"})
    assert (await db.volume_type_get_all(user, True))["c"]["id"] == newer["id"]
    with pytest.raises(exceptions.AdminRequired):
        await db.volume_type_create(user, {"name": "mine"})
    with pytest.raises(exceptions.AdminRequired):
        await db.volume_type_destroy(user, "a")
    with pytest.raises(exceptions.NotAuthorized):
        await db.volume_type_get_all(RequestContext(None, None))


async def test_destroy_soft_deletes_the_type_and_its_specs(db, raw, admin):
    t = await db.volume_type_create(admin, {"name": "gold", "extra_specs": {"a": "1"}})
    vol = await db.volume_create(admin, {"volume_type_id": t["id"]})
    assert await db.volume_type_destroy(admin, "gold") is None
    with pytest.raises(exceptions.VolumeTypeNotFoundByName):
        await db.volume_type_get_by_name(admin, "gold")
    dead = await db.volume_type_get(get_admin_context("yes"), t["id"])
    assert dead["deleted"] is True and dead["deleted_at"] is not None
    assert dead["updated_at"] is None and dead["extra_specs"] == {}
    specs = await _rows(raw, SPECS, SPECS.c.volume_type_id == t["id"])
    assert [(s["deleted"], s["updated_at"]) for s in specs] == [(True, None)]
    # volumes keep naming the type; it just stops showing
    got = await db.volume_get(admin, vol["id"])
    assert got["volume_type_id"] == t["id"] and got["volume_type"] is None
    with pytest.raises(exceptions.VolumeTypeNotFoundByName) as info:
        await db.volume_type_destroy(admin, "gold")
    assert info.value.kwargs == {"volume_type_name": "gold", "code": 404}


async def test_extra_specs_get_delete_update_or_create(db, raw, user, admin):
    t = await db.volume_type_create(admin, {"name": "gold", "extra_specs": {"a": "1",
                                                                            "b": "2"}})
    assert await db.volume_type_extra_specs_get(user, t["id"]) == {"a": "1", "b": "2"}
    assert await db.volume_type_extra_specs_update_or_create(
        user, t["id"], {"b": 20, "c": "3"}) is None
    assert await db.volume_type_extra_specs_get(user, t["id"]) == \
        {"a": "1", "b": "20", "c": "3"}
    assert await db.volume_type_extra_specs_delete(user, t["id"], "a") is None
    await db.volume_type_extra_specs_delete(user, t["id"], "absent")
    assert await db.volume_type_extra_specs_get(user, t["id"]) == {"b": "20", "c": "3"}
    a_rows = await _rows(raw, SPECS, SPECS.c.key == "a")
    assert [(r["deleted"], r["updated_at"]) for r in a_rows] == [(True, None)]
    assert a_rows[0]["deleted_at"] is not None
    # a deleted key comes back as a new live row; the type itself is never checked
    await db.volume_type_extra_specs_update_or_create(user, t["id"], {"a": "again"})
    assert (await db.volume_type_get(user, t["id"]))["extra_specs"] == \
        {"a": "again", "b": "20", "c": "3"}
    assert len(await _rows(raw, SPECS, SPECS.c.key == "a")) == 2
    await db.volume_type_extra_specs_update_or_create(user, 4242, {"k": "v"})
    assert await db.volume_type_extra_specs_get(user, 4242) == {"k": "v"}
    assert await db.volume_type_extra_specs_get(user, 999) == {}
    assert await db.volume_type_extra_specs_get(user, "nonsense") == {}
    with pytest.raises(exceptions.InvalidInput):
        await db.volume_type_extra_specs_update_or_create(user, t["id"], ["a"])
    with pytest.raises(exceptions.InvalidInput):
        await db.volume_type_extra_specs_update_or_create(user, t["id"], {"k": "x" * 300})
    assert await db.volume_type_extra_specs_get(user, t["id"]) == \
        {"a": "again", "b": "20", "c": "3"}


async def test_concurrent_creates_of_one_name_make_one_type(rpc_client, pg_engine):
    await _wipe(pg_engine)
    admin = get_admin_context()
    results = await asyncio.gather(*(rpc_client.volume_type_create(admin, {"name": "race"})
                                     for _ in range(10)), return_exceptions=True)
    made = [r for r in results if isinstance(r, dict)]
    assert len(made) == 1, results
    assert all(isinstance(r, exceptions.VolumeTypeExists) for r in results
               if not isinstance(r, dict)), results
    assert len(await _rows(pg_engine, TYPES)) == 1
