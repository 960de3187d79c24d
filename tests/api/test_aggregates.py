"""aggregate_* (api-compute.md §3.17), through the client (RabbitMQ -> conductor ->
PostgreSQL) and on SQLite."""

import asyncio

import pytest
from sqlalchemy import select

from conductor.db.models import AggregateMetadata
from schemas import exceptions
from schemas.context import RequestContext, get_admin_context

YES = get_admin_context("yes")
ONLY = get_admin_context("only")
META = AggregateMetadata.__table__


@pytest.fixture
def raw(_api_backend, db):
    """The engine behind ``db`` (already emptied), for columns no function returns."""
    return _api_backend[0]


async def _aggregate(db, admin, name="fake_aggregate", zone="fake_avail_zone",
                     metadata=None):
    return await db.aggregate_create(admin, {"name": name, "availability_zone": zone},
                                     metadata)


async def test_create_get_and_name_reuse(db, admin):
    agg = await _aggregate(db, admin)
    assert agg["name"] == "fake_aggregate" and agg["availability_zone"] == "fake_avail_zone"
    assert agg["id"] > 0 and agg["deleted"] is False and agg["created_at"] is not None
    assert agg["hosts"] == [] and agg["metadetails"] == {}
    assert not any(k.startswith("_") for k in agg)
    assert await db.aggregate_get(admin, agg["id"]) == agg
    with pytest.raises(exceptions.AggregateNameExists) as info:
        await _aggregate(db, admin, zone="other")
    assert info.value.kwargs == {"aggregate_name": "fake_aggregate", "code": 500}
    await db.aggregate_delete(admin, agg["id"])
    again = await _aggregate(db, admin, zone="new_zone")
    assert again["id"] != agg["id"] and again["availability_zone"] == "new_zone"
    assert again["metadetails"] == {}
    with pytest.raises(exceptions.AggregateNotFound) as info:
        await db.aggregate_get(admin, 4242)
    assert info.value.kwargs == {"aggregate_id": 4242, "code": 404}
    with pytest.raises(exceptions.AggregateNotFound):
        await db.aggregate_get(admin, "not-an-id")


async def test_create_with_metadata_and_get_with_hosts(db, admin):
    metadata = {"availability_zone": "fake_avail_zone", "fake_key1": "fake_value1"}
    agg = await _aggregate(db, admin, metadata=metadata)
    assert agg["metadetails"] == metadata
    assert await db.aggregate_metadata_get(admin, agg["id"]) == metadata
    assert await db.aggregate_host_add(admin, agg["id"], "foo.openstack.org") is None
    got = await db.aggregate_get(admin, agg["id"])
    assert got["hosts"] == ["foo.openstack.org"] and got["metadetails"] == metadata


async def test_create_refusals(db, admin, user):
    with pytest.raises(exceptions.AdminRequired):
        await _aggregate(db, user)
    with pytest.raises(exceptions.AdminRequired):
        await db.aggregate_get_all(user)
    with pytest.raises(exceptions.AdminRequired):
        await db.aggregate_metadata_get_by_host(user, "h")
    with pytest.raises(exceptions.DBError):  # availability_zone is NOT NULL
        await db.aggregate_create(admin, {"name": "nozone"})
    with pytest.raises(exceptions.InvalidInput):
        await db.aggregate_create(admin, {"availability_zone": "z"})
    assert await db.aggregate_get_all(admin) == []


async def test_delete_and_read_deleted(db, admin):
    agg = await _aggregate(db, admin, metadata={"k": "v"})
    await db.aggregate_host_add(admin, agg["id"], "h1")
    assert await db.aggregate_delete(admin, agg["id"]) is None
    assert await db.aggregate_get_all(admin) == []
    with pytest.raises(exceptions.AggregateNotFound):
        await db.aggregate_get(admin, agg["id"])
    gone = await db.aggregate_get(YES, agg["id"])
    assert gone["deleted"] is True and gone["deleted_at"] is not None
    # the rows of a deleted aggregate vanish through the join conditions
    assert gone["hosts"] == [] and gone["metadetails"] == {}
    # bulk soft delete keeps updated_at; the metadata row was deleted too, host row not
    assert gone["updated_at"] is None
    assert await db.aggregate_metadata_get(YES, agg["id"]) == {"k": "v"}
    assert await db.aggregate_metadata_get(ONLY, agg["id"]) == {"k": "v"}
    assert await db.aggregate_host_get_all(YES, agg["id"]) == ["h1"]
    assert await db.aggregate_host_get_all(ONLY, agg["id"]) == []
    with pytest.raises(exceptions.AggregateNotFound) as info:
        await db.aggregate_delete(admin, agg["id"])
    assert info.value.kwargs == {"aggregate_id": agg["id"], "code": 404}
    with pytest.raises(exceptions.AggregateNotFound):
        await db.aggregate_metadata_get(admin, agg["id"])


async def test_get_all(db, admin):
    made = [await _aggregate(db, admin, name=f"agg{i}") for i in range(4)]
    await db.aggregate_delete(admin, made[1]["id"])
    assert [a["id"] for a in await db.aggregate_get_all(admin)] == \
        [made[0]["id"], made[2]["id"], made[3]["id"]]
    assert [a["id"] for a in await db.aggregate_get_all(YES)] == [a["id"] for a in made]
    assert [a["id"] for a in await db.aggregate_get_all(ONLY)] == [made[1]["id"]]


async def test_get_by_host(db, admin):
    a1 = await _aggregate(db, admin, name="a1", metadata={"goodkey": "good"})
    a2 = await _aggregate(db, admin, name="a2", metadata={"otherkey": "x"})
    a3 = await _aggregate(db, admin, name="a3")
    for agg in (a1, a2):
        await db.aggregate_host_add(admin, agg["id"], "foo.openstack.org")
    await db.aggregate_host_add(admin, a3["id"], "bar.openstack.org")
    found = await db.aggregate_get_by_host(admin, "foo.openstack.org")
    assert [a["id"] for a in found] == [a1["id"], a2["id"]]
    assert found[0]["hosts"] == ["foo.openstack.org"]
    assert found[0]["metadetails"] == {"goodkey": "good"}
    keyed = await db.aggregate_get_by_host(admin, "foo.openstack.org", key="goodkey")
    assert [a["id"] for a in keyed] == [a1["id"]]
    assert await db.aggregate_get_by_host(admin, "unknown_host") == []
    # a deleted host row no longer counts; a second host does not duplicate the aggregate
    await db.aggregate_host_add(admin, a1["id"], "baz")
    await db.aggregate_host_delete(admin, a2["id"], "foo.openstack.org")
    assert [a["id"] for a in await db.aggregate_get_by_host(admin, "foo.openstack.org")] \
        == [a1["id"]]


async def test_metadata_get_by_host(db, admin):
    a1 = await _aggregate(db, admin, name="a1", metadata={"fake_key1": "fake_value1"})
    a2 = await _aggregate(db, admin, name="a2",
                          metadata={"fake_key1": "fake_value2", "good": "value"})
    a3 = await _aggregate(db, admin, name="a3", metadata={"badkey": "bad"})
    bare = await _aggregate(db, admin, name="bare")
    for agg in (a1, a2, bare):
        await db.aggregate_host_add(admin, agg["id"], "foo.openstack.org")
    await db.aggregate_host_add(admin, a3["id"], "bar.openstack.org")
    result = await db.aggregate_metadata_get_by_host(admin, "foo.openstack.org")
    assert result == {"fake_key1": {"fake_value1", "fake_value2"}, "good": {"value"}}
    assert isinstance(result["good"], set)
    good = await db.aggregate_metadata_get_by_host(admin, "foo.openstack.org", key="good")
    assert good == {"good": {"value"}}
    await db.aggregate_metadata_delete(admin, a2["id"], "good")
    assert await db.aggregate_metadata_get_by_host(admin, "foo.openstack.org",
                                                   key="good") == {}
    assert await db.aggregate_metadata_get_by_host(admin, "nowhere") == {}


async def test_update(db, raw, admin):
    agg = await _aggregate(db, admin, metadata={"availability_zone": "fake_avail_zone",
                                                "fake_key1": "fake_value1"})
    await db.aggregate_host_add(admin, agg["id"], "h1")
    updated = await db.aggregate_update(admin, agg["id"], {"availability_zone": "zone2"})
    assert updated["availability_zone"] == "zone2" and updated["updated_at"] is not None
    assert updated["hosts"] == ["h1"]
    assert updated["metadetails"] == {"availability_zone": "fake_avail_zone",
                                      "fake_key1": "fake_value1"}
    new_meta = {"availability_zone": "fake_avail_zone", "fake_key2": "fake_value2",
                "fake_key1": "changed"}
    updated = await db.aggregate_update(admin, agg["id"], {"metadata": new_meta,
                                                           "name": "renamed"})
    assert updated["metadetails"] == new_meta and updated["name"] == "renamed"
    assert await db.aggregate_metadata_get(admin, agg["id"]) == new_meta
    # replace: the dropped key got a flag-only delete (deleted_at stays NULL)
    assert await db.aggregate_update(admin, agg["id"], {"metadata": {"only": "1"}})
    assert await db.aggregate_metadata_get(admin, agg["id"]) == {"only": "1"}
    assert set(await db.aggregate_metadata_get(YES, agg["id"])) == \
        {"only", "availability_zone", "fake_key1", "fake_key2"}
    async with raw.connect() as conn:
        dropped = (await conn.execute(select(META.c.deleted, META.c.deleted_at,
                                             META.c.updated_at)
                                      .where(META.c.key == "fake_key2"))).one()
    assert dropped.deleted is True and dropped.deleted_at is None
    assert dropped.updated_at is not None
    # the name is not re-checked
    other = await _aggregate(db, admin, name="other")
    assert (await db.aggregate_update(admin, other["id"], {"name": "renamed"}))["name"] \
        == "renamed"
    with pytest.raises(exceptions.AggregateNotFound) as info:
        await db.aggregate_update(admin, 4242, {"availability_zone": "z"})
    assert info.value.kwargs == {"aggregate_id": 4242, "code": 404}


async def test_metadata_add_get_delete(db, admin):
    agg = await _aggregate(db, admin)
    assert await db.aggregate_metadata_add(admin, agg["id"], {"k1": "v1", "k2": "v2"}) \
        is None
    assert await db.aggregate_metadata_get(admin, agg["id"]) == {"k1": "v1", "k2": "v2"}
    assert await db.aggregate_metadata_delete(admin, agg["id"], "k1") is None
    assert await db.aggregate_metadata_get(admin, agg["id"]) == {"k2": "v2"}
    assert await db.aggregate_metadata_get(YES, agg["id"]) == {"k1": "v1", "k2": "v2"}
    # re-adding a deleted key undeletes it with the new value
    await db.aggregate_metadata_add(admin, agg["id"], {"k1": "new"})
    assert await db.aggregate_metadata_get(admin, agg["id"]) == {"k1": "new", "k2": "v2"}
    assert await db.aggregate_metadata_get(YES, agg["id"]) == {"k1": "new", "k2": "v2"}
    with pytest.raises(exceptions.AggregateNotFound):  # the live aggregate is not "only"
        await db.aggregate_metadata_get(ONLY, agg["id"])
    with pytest.raises(exceptions.AggregateMetadataNotFound) as info:
        await db.aggregate_metadata_delete(admin, agg["id"], "nope")
    assert info.value.kwargs == {"aggregate_id": agg["id"], "metadata_key": "nope",
                                 "code": 404}
    for call in (db.aggregate_metadata_get(admin, 4242),
                 db.aggregate_metadata_add(admin, 4242, {"a": "b"}),
                 db.aggregate_metadata_delete(admin, 4242, "k2")):
        with pytest.raises(exceptions.AggregateNotFound):
            await call


async def test_hosts_add_get_delete(db, admin):
    a1 = await _aggregate(db, admin, name="a1")
    a2 = await _aggregate(db, admin, name="a2")
    await db.aggregate_host_add(admin, a1["id"], "foo.openstack.org")
    assert await db.aggregate_host_get_all(admin, a1["id"]) == ["foo.openstack.org"]
    with pytest.raises(exceptions.AggregateHostExists) as info:
        await db.aggregate_host_add(admin, a1["id"], "foo.openstack.org")
    assert info.value.kwargs == {"host": "foo.openstack.org", "aggregate_id": a1["id"],
                                 "code": 500}
    await db.aggregate_host_add(admin, a2["id"], "foo.openstack.org")
    assert await db.aggregate_host_get_all(admin, a2["id"]) == ["foo.openstack.org"]
    # add, delete, add again: one row, undeleted
    assert await db.aggregate_host_delete(admin, a1["id"], "foo.openstack.org") is None
    assert await db.aggregate_host_get_all(admin, a1["id"]) == []
    assert await db.aggregate_host_get_all(YES, a1["id"]) == ["foo.openstack.org"]
    await db.aggregate_host_add(admin, a1["id"], "foo.openstack.org")
    assert await db.aggregate_host_get_all(YES, a1["id"]) == ["foo.openstack.org"]
    with pytest.raises(exceptions.AggregateHostNotFound) as info:
        await db.aggregate_host_delete(admin, a1["id"], "bar")
    assert info.value.kwargs == {"aggregate_id": a1["id"], "host": "bar", "code": 404}
    for call in (db.aggregate_host_add(admin, 4242, "h"),
                 db.aggregate_host_get_all(admin, 4242),
                 db.aggregate_host_delete(admin, 4242, "h")):
        with pytest.raises(exceptions.AggregateNotFound):
            await call


async def test_concurrent_creates_and_host_adds(db, admin):
    made = await asyncio.gather(*(_aggregate(db, admin, name="same") for _ in range(5)),
                                return_exceptions=True)
    created = [r for r in made if isinstance(r, dict)]
    assert len(created) == 1
    assert all(isinstance(r, (dict, exceptions.AggregateNameExists)) for r in made)
    agg_id = created[0]["id"]
    added = await asyncio.gather(*(db.aggregate_host_add(admin, agg_id, "h")
                                   for _ in range(5)), return_exceptions=True)
    assert added.count(None) == 1
    assert all(r is None or isinstance(r, exceptions.AggregateHostExists) for r in added)
    assert await db.aggregate_host_get_all(YES, agg_id) == ["h"]
    await asyncio.gather(*(db.aggregate_metadata_add(admin, agg_id, {"k": str(i)})
                           for i in range(5)))
    assert len(await db.aggregate_metadata_get(YES, agg_id)) == 1


async def test_anonymous_context_refused(db):
    with pytest.raises(exceptions.AdminRequired):
        await db.aggregate_get(RequestContext(None, None), 1)
