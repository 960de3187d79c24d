"""instance_type_* (flavors, access list, extra specs) through the client and on SQLite."""

import asyncio

import pytest

from schemas import exceptions
from schemas.context import RequestContext, get_admin_context

COLUMNS = {"id", "name", "memory_mb", "vcpus", "root_gb", "ephemeral_gb", "flavorid", "swap",
           "rxtx_factor", "vcpu_weight", "disabled", "is_public", "created_at", "updated_at",
           "deleted_at", "deleted"}


async def _flavor(db, admin, name="m1.test", flavorid="100", **values):
    base = {"name": name, "flavorid": flavorid, "memory_mb": 512, "vcpus": 1, "root_gb": 10,
            "ephemeral_gb": 0}
    base.update(values)
    return await db.instance_type_create(admin, base)


async def test_create_returns_flavor_dict_and_getters_agree(db, admin, user):
    created = await _flavor(db, admin, extra_specs={"cpu_arch": "x86_64", "hw": 2})
    assert set(created) == COLUMNS | {"extra_specs"}
    assert created["swap"] == 0 and created["rxtx_factor"] == 1.0
    assert created["disabled"] is False and created["is_public"] is True
    assert created["deleted"] is False and created["updated_at"] is None
    assert created["extra_specs"] == {"cpu_arch": "x86_64", "hw": 2}  # as given
    by_id = await db.instance_type_get(user, created["id"])
    assert by_id == dict(created, extra_specs={"cpu_arch": "x86_64", "hw": "2"})
    assert await db.instance_type_get_by_name(user, "m1.test") == by_id
    assert await db.instance_type_get_by_flavor_id(user, "100") == by_id
    # an integer flavor id finds the text one on both backends, as on Nova's SQLite
    assert (await db.instance_type_get_by_flavor_id(user, 100))["id"] == created["id"]


async def test_duplicate_name_or_flavorid_is_instance_type_exists(db, admin):
    await _flavor(db, admin)
    with pytest.raises(exceptions.InstanceTypeExists) as info:
        await _flavor(db, admin, flavorid="200")
    assert info.value.kwargs == {"name": "m1.test", "code": 500}
    with pytest.raises(exceptions.InstanceTypeExists) as info:
        await _flavor(db, admin, name="m1.other")
    assert info.value.kwargs == {"name": "m1.other", "code": 500}  # keyed by the new name
    assert [f["name"] for f in await db.instance_type_get_all(admin)] == ["m1.test"]


async def test_deleted_flavors_do_not_block_a_create_unless_the_context_reads_them(db, admin):
    old = await _flavor(db, admin)
    await db.instance_type_destroy(admin, "m1.test")
    with pytest.raises(exceptions.InstanceTypeExists):
        await _flavor(db, get_admin_context("yes"))
    new = await _flavor(db, admin)
    assert new["id"] != old["id"]
    assert (await db.instance_type_get_by_name(admin, "m1.test"))["id"] == new["id"]


async def test_create_errors(db, admin, user):
    with pytest.raises(exceptions.AdminRequired):
        await _flavor(db, user)
    with pytest.raises(exceptions.DBError, match="instance_types.memory_mb"):
        await _flavor(db, admin, memory_mb="lots")
    with pytest.raises(exceptions.DBError, match="extra_specs"):
        await _flavor(db, admin, extra_specs=["not", "a", "dict"])
    with pytest.raises(exceptions.DBError):  # NOT NULL column given None
        await _flavor(db, admin, swap=None)
    with pytest.raises(exceptions.InvalidInput, match="flavorid"):
        await db.instance_type_create(admin, {"name": "x"})
    assert await db.instance_type_get_all(admin, inactive=True) == []


async def test_getters_raise_not_found_with_kwargs(db, admin, user):
    with pytest.raises(exceptions.InstanceTypeNotFound) as info:
        await db.instance_type_get(user, 999)
    assert info.value.kwargs == {"instance_type_id": 999, "code": 404}
    with pytest.raises(exceptions.InstanceTypeNotFound):
        await db.instance_type_get(user, "not-an-id")
    with pytest.raises(exceptions.InstanceTypeNotFoundByName) as info:
        await db.instance_type_get_by_name(user, "nope")
    assert info.value.kwargs == {"instance_type_name": "nope", "code": 404}
    with pytest.raises(exceptions.FlavorNotFound) as info:
        await db.instance_type_get_by_flavor_id(user, "nope")
    assert info.value.kwargs == {"flavor_id": "nope", "code": 404}
    with pytest.raises(exceptions.NotAuthorized):
        await db.instance_type_get(RequestContext(None, None), 1)


async def test_destroy_soft_deletes_flavor_and_specs(db, admin, user):
    created = await _flavor(db, admin, extra_specs={"a": "1"})
    with pytest.raises(exceptions.AdminRequired):
        await db.instance_type_destroy(user, "m1.test")
    assert await db.instance_type_destroy(admin, "m1.test") is None
    with pytest.raises(exceptions.InstanceTypeNotFoundByName):
        await db.instance_type_get_by_name(admin, "m1.test")
    with pytest.raises(exceptions.InstanceTypeNotFound):
        await db.instance_type_get(admin, created["id"])
    with pytest.raises(exceptions.FlavorNotFound):
        await db.instance_type_get_by_flavor_id(admin, "100")
    gone = await db.instance_type_get(get_admin_context("yes"), created["id"])
    assert gone["deleted"] is True and gone["deleted_at"] is not None
    assert gone["updated_at"] is None  # bulk soft delete keeps updated_at
    assert gone["extra_specs"] == {}  # the specs went with it
    assert await db.instance_type_extra_specs_get(admin, "100") == {}
    with pytest.raises(exceptions.InstanceTypeNotFoundByName) as info:
        await db.instance_type_destroy(admin, "m1.test")
    assert info.value.kwargs == {"instance_type_name": "m1.test", "code": 404}


async def test_get_all_orders_by_name_and_inactive_includes_deleted(db, admin, user):
    b = await _flavor(db, admin, name="b", flavorid="2")
    a = await _flavor(db, admin, name="a", flavorid="1")
    c = await _flavor(db, admin, name="c", flavorid="3")
    await db.instance_type_destroy(admin, "c")
    assert [f["id"] for f in await db.instance_type_get_all(user)] == [a["id"], b["id"]]
    everything = await db.instance_type_get_all(user, inactive=True)
    assert [f["id"] for f in everything] == [a["id"], b["id"], c["id"]]
    # the context's read_deleted plays no part
    only = await db.instance_type_get_all(get_admin_context("only"))
    assert [f["id"] for f in only] == [a["id"], b["id"]]
    assert everything[0]["extra_specs"] == {} and "projects" not in everything[0]


async def test_get_all_filters(db, admin, user, db_config, monkeypatch):
    # 2012.2's scoping: a private flavor whose access was removed is still listed
    # (strict isolation hides it: tests/api/test_isolation_matrix.py)
    monkeypatch.setattr(db_config, "isolation", "nova")
    small = await _flavor(db, admin, name="small", flavorid="1", memory_mb=256, root_gb=5)
    big = await _flavor(db, admin, name="big", flavorid="2", memory_mb=4096, root_gb=80)
    off = await _flavor(db, admin, name="off", flavorid="3", memory_mb=8192, root_gb=160,
                        disabled=True)
    private = await _flavor(db, admin, name="private", flavorid="4", is_public=False)
    secret = await _flavor(db, admin, name="secret", flavorid="5", is_public=False)
    await db.instance_type_access_add(admin, "4", "project1")
    await db.instance_type_access_add(admin, "5", "project1")
    await db.instance_type_access_remove(admin, "5", "project1")

    async def ids(context, **filters):
        return {f["id"] for f in await db.instance_type_get_all(context, filters=filters)}

    assert await ids(user, min_memory_mb=4096) == {big["id"], off["id"]}
    assert await ids(user, min_memory_mb="4096", min_root_gb=100) == {off["id"]}
    assert await ids(user, disabled=True) == {off["id"]}
    assert await ids(user, disabled=False) == {small["id"], big["id"], private["id"],
                                               secret["id"]}
    public = {small["id"], big["id"], off["id"]}
    # the user's project also sees the private flavor it has (live) access to
    assert await ids(user, is_public=True) == public | {private["id"]}
    assert await ids(admin, is_public=True) == public
    assert await ids(user, is_public=False) == {private["id"], secret["id"]}
    assert await ids(user, is_public=None, colour="blue") == public | {private["id"],
                                                                        secret["id"]}
    assert await ids(user, min_root_gb=None) == set()
    with pytest.raises(exceptions.InvalidInput, match="memory_mb"):
        await db.instance_type_get_all(user, filters={"min_memory_mb": "big"})


async def test_access_add_list_remove(db, admin, user):
    flavor = await _flavor(db, admin, is_public=False)
    first = await db.instance_type_access_add(admin, "100", "project1")
    assert first["instance_type_id"] == flavor["id"] and first["project_id"] == "project1"
    assert first["deleted"] is False
    with pytest.raises(exceptions.FlavorAccessExists) as info:
        await db.instance_type_access_add(admin, "100", "project1")
    assert info.value.kwargs == {"flavor_id": "100", "project_id": "project1", "code": 500}
    second = await db.instance_type_access_add(admin, "100", "project2")
    listed = await db.instance_type_access_get_by_flavor_id(admin, "100")
    assert listed == [first, second]

    assert await db.instance_type_access_remove(admin, "100", "project1") is None
    assert await db.instance_type_access_get_by_flavor_id(admin, "100") == [second]
    # Quirk: removing again succeeds, the row is found among the deleted ones
    assert await db.instance_type_access_remove(admin, "100", "project1") is None
    with pytest.raises(exceptions.FlavorAccessNotFound) as info:
        await db.instance_type_access_remove(admin, "100", "project3")
    assert info.value.kwargs == {"flavor_id": "100", "project_id": "project3", "code": 404}

    # adding back revives the removed row
    again = await db.instance_type_access_add(admin, "100", "project1")
    assert again["id"] == first["id"] and again["deleted"] is False
    assert again["deleted_at"] is None and again["updated_at"] is not None
    assert [a["id"] for a in await db.instance_type_access_get_by_flavor_id(admin, "100")] \
        == [first["id"], second["id"]]


async def test_access_errors(db, admin, user):
    await _flavor(db, admin)
    for call in (db.instance_type_access_add(admin, "404", "p"),
                 db.instance_type_access_remove(admin, "404", "p"),
                 db.instance_type_access_get_by_flavor_id(admin, "404")):
        with pytest.raises(exceptions.FlavorNotFound) as info:
            await call
        assert info.value.kwargs == {"flavor_id": "404", "code": 404}
    with pytest.raises(exceptions.AdminRequired):
        await db.instance_type_access_add(user, "100", "project1")
    with pytest.raises(exceptions.AdminRequired):
        await db.instance_type_access_remove(user, "100", "project1")
    with pytest.raises(exceptions.AdminRequired):
        await db.instance_type_access_get_by_flavor_id(user, "100")


async def test_extra_specs_get_update_or_create_delete(db, admin, user):
    flavor = await _flavor(db, admin, extra_specs={"a": "1", "b": "2"})
    assert await db.instance_type_extra_specs_get(user, "100") == {"a": "1", "b": "2"}
    result = await db.instance_type_extra_specs_update_or_create(user, "100",
                                                                 {"b": "20", "c": 3})
    assert result is None
    assert await db.instance_type_extra_specs_get(user, "100") == {"a": "1", "b": "20",
                                                                   "c": "3"}
    assert await db.instance_type_extra_specs_delete(user, "100", "a") is None
    assert await db.instance_type_extra_specs_delete(user, "100", "missing") is None
    assert await db.instance_type_extra_specs_get(user, "100") == {"b": "20", "c": "3"}
    # a deleted key comes back as a new row
    await db.instance_type_extra_specs_update_or_create(user, "100", {"a": "again"})
    got = await db.instance_type_get(user, flavor["id"])
    assert got["extra_specs"] == {"a": "again", "b": "20", "c": "3"}


async def test_extra_specs_of_unknown_flavors(db, admin, user):
    assert await db.instance_type_extra_specs_get(user, "nope") == {}
    assert await db.instance_type_extra_specs_delete(user, "nope", "a") is None
    with pytest.raises(exceptions.FlavorNotFound) as info:
        await db.instance_type_extra_specs_update_or_create(user, "nope", {"a": "1"})
    assert info.value.kwargs == {"flavor_id": "nope", "code": 404}
    await _flavor(db, admin, extra_specs={"a": "1"})
    await db.instance_type_destroy(admin, "m1.test")
    with pytest.raises(exceptions.FlavorNotFound):
        await db.instance_type_extra_specs_update_or_create(user, "100", {"a": "2"})
    with pytest.raises(exceptions.NotAuthorized):
        await db.instance_type_extra_specs_get(RequestContext(None, None), "100")


async def test_concurrent_creates_of_one_flavor_make_one_row(db, admin):
    results = await asyncio.gather(*(_flavor(db, admin, flavorid=str(i)) for i in range(6)),
                                   return_exceptions=True)
    assert sum(isinstance(r, dict) for r in results) == 1
    assert all(isinstance(r, (dict, exceptions.InstanceTypeExists)) for r in results)
    assert len(await db.instance_type_get_all(admin)) == 1


async def test_concurrent_access_adds_make_one_row(db, admin):
    await _flavor(db, admin)
    results = await asyncio.gather(
        *(db.instance_type_access_add(admin, "100", "project1") for _ in range(6)),
        return_exceptions=True)
    assert sum(isinstance(r, dict) for r in results) == 1
    assert all(isinstance(r, (dict, exceptions.FlavorAccessExists)) for r in results)
    assert len(await db.instance_type_access_get_by_flavor_id(admin, "100")) == 1

