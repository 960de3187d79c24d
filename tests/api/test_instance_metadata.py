"""instance_metadata_*, instance_system_metadata_* (api-compute.md §3.9) and
instance_info_cache_* (§3.7), through the client and on SQLite."""

import uuid

import pytest
from sqlalchemy import select

from conductor.db.models import InstanceMetadata, InstanceSystemMetadata
from schemas import exceptions
from schemas.context import RequestContext, get_admin_context

USER_META = InstanceMetadata.__table__
SYSTEM_META = InstanceSystemMetadata.__table__


@pytest.fixture
def raw(_api_backend, db):
    return _api_backend[0]


async def _rows(engine, table, instance_uuid):
    async with engine.connect() as conn:
        result = await conn.execute(select(table).where(table.c.instance_uuid == instance_uuid)
                                    .order_by(table.c.id))
        return [dict(r) for r in result.mappings()]


async def test_user_metadata(db, raw, user):
    u = str(uuid.uuid4())  # no instance: none of these functions checks for one
    assert await db.instance_metadata_get(user, u) == {}
    given = {"a": "1", "b": 2}
    assert await db.instance_metadata_update(user, u, given, False) == given
    assert await db.instance_metadata_get(user, u) == {"a": "1", "b": "2"}
    assert await db.instance_metadata_update(user, u, {"c": "3", "a": "x"}, False) == \
        {"c": "3", "a": "x"}
    assert await db.instance_metadata_get(user, u) == {"a": "x", "b": "2", "c": "3"}
    # delete=True: keys not given get a flag-only soft delete (deleted_at stays NULL)
    await db.instance_metadata_update(user, u, {"c": "4"}, True)
    assert await db.instance_metadata_get(user, u) == {"c": "4"}
    rows = {r["key"]: r for r in await _rows(raw, USER_META, u)}
    assert rows["a"]["deleted"] is True and rows["a"]["deleted_at"] is None
    assert rows["a"]["updated_at"] is not None
    # delete of a key: bulk soft delete, updated_at kept, no error when absent
    assert await db.instance_metadata_delete(user, u, "c") is None
    assert await db.instance_metadata_delete(user, u, "never") is None
    [c] = [r for r in await _rows(raw, USER_META, u) if r["key"] == "c"]
    assert c["deleted"] is True and c["deleted_at"] is not None
    assert c["updated_at"] == rows["c"]["updated_at"]
    assert await db.instance_metadata_get(user, u) == {}
    # deleted rows never count, whatever the context
    assert await db.instance_metadata_get(RequestContext("user1", "project1",
                                                         read_deleted="yes"), u) == {}
    assert await db.instance_metadata_update(user, u, {"a": "again"}, False) == {"a": "again"}
    assert await db.instance_metadata_get(user, u) == {"a": "again"}
    with pytest.raises(exceptions.InvalidInput):
        await db.instance_metadata_update(user, u, ["a"], False)
    with pytest.raises(exceptions.InvalidInput):
        await db.instance_metadata_update(user, u, {"k": "v" * 300}, False)
    assert await db.instance_metadata_get(user, 12) == {}


async def test_system_metadata_reads_deleted_rows_per_context(db, raw, admin):
    u = str(uuid.uuid4())
    assert await db.instance_system_metadata_update(admin, u, {"a": "1", "b": "2"},
                                                    False) is None
    assert await db.instance_system_metadata_delete(admin, u, "a") is None
    assert await db.instance_system_metadata_get(admin, u) == {"b": "2"}
    yes, only = get_admin_context("yes"), get_admin_context("only")
    assert await db.instance_system_metadata_get(yes, u) == {"a": "1", "b": "2"}
    assert await db.instance_system_metadata_get(only, u) == {"a": "1"}
    # a new live row for the deleted key: under 'yes' the highest id wins
    await db.instance_system_metadata_update(admin, u, {"a": "new"}, False)
    assert await db.instance_system_metadata_get(yes, u) == {"a": "new", "b": "2"}
    assert await db.instance_system_metadata_get(admin, u) == {"a": "new", "b": "2"}
    # delete=True under 'no' spares the deleted row, flags the live ones not given
    await db.instance_system_metadata_update(admin, u, {"a": "kept"}, True)
    assert await db.instance_system_metadata_get(admin, u) == {"a": "kept"}
    rows = await _rows(raw, SYSTEM_META, u)
    assert [(r["key"], r["value"], r["deleted"]) for r in rows] == \
        [("a", "1", True), ("b", "2", True), ("a", "kept", False)]
    assert rows[1]["deleted_at"] is None  # flag-only
    # per-context delete: under 'only' it reaches already deleted rows only
    await db.instance_system_metadata_delete(only, u, "a")
    assert await db.instance_system_metadata_get(admin, u) == {"a": "kept"}


async def test_info_cache(db, raw, user):
    u = str(uuid.uuid4())
    assert await db.instance_info_cache_get(user, u) is None
    created = await db.instance_info_cache_create(user, {"instance_uuid": u,
                                                         "network_info": "[]"})
    assert created["instance_uuid"] == u and created["network_info"] == "[]"
    assert created["deleted"] is False and created["updated_at"] is None
    with pytest.raises(exceptions.DBError):
        await db.instance_info_cache_create(user, {"instance_uuid": u})
    updated = await db.instance_info_cache_update(user, u, {"network_info": "[1]"})
    assert updated["id"] == created["id"] and updated["network_info"] == "[1]"
    assert updated["updated_at"] is not None
    assert await db.instance_info_cache_delete(user, u) is None
    gone = await db.instance_info_cache_get(user, u)  # deleted rows included, always
    assert gone["deleted"] is True and gone["deleted_at"] is not None
    # a deleted cache is returned unchanged by update and left alone by delete
    assert await db.instance_info_cache_update(user, u, {"network_info": "[2]"}) == gone
    await db.instance_info_cache_delete(user, u)
    assert await db.instance_info_cache_get(user, u) == gone
    # no row: update creates one, delete creates a deleted one
    other = str(uuid.uuid4())
    made = await db.instance_info_cache_update(user, other, {"network_info": "x"})
    assert made["instance_uuid"] == other and made["deleted"] is False
    third = str(uuid.uuid4())
    await db.instance_info_cache_delete(user, third)
    dead = await db.instance_info_cache_get(user, third)
    assert dead["deleted"] is True and dead["network_info"] is None


async def test_instance_create_update_and_destroy_use_these(db, admin):
    inst = await db.instance_create(admin, {"metadata": {"k": "v"},
                                            "system_metadata": {"s": "1"}})
    u = inst["uuid"]
    assert await db.instance_metadata_get(admin, u) == {"k": "v"}
    assert await db.instance_system_metadata_get(admin, u) == {"s": "1"}
    cache = await db.instance_info_cache_get(admin, u)
    assert cache["id"] == inst["info_cache"]["id"] and cache["network_info"] is None
    await db.instance_metadata_update(admin, u, {"k2": "v2"}, False)
    got = await db.instance_get_by_uuid(admin, u)
    assert sorted(m["key"] for m in got["metadata"]) == ["k", "k2"]
    await db.instance_destroy(admin, u)
    assert (await db.instance_info_cache_get(admin, u))["deleted"] is True


async def test_anonymous_contexts_are_refused(db):
    nobody = RequestContext(None, None)
    u = str(uuid.uuid4())
    for call in (db.instance_metadata_get(nobody, u),
                 db.instance_metadata_update(nobody, u, {}, False),
                 db.instance_system_metadata_get(nobody, u),
                 db.instance_info_cache_get(nobody, u),
                 db.instance_info_cache_delete(nobody, u)):
        with pytest.raises(exceptions.NotAuthorized):
            await call
