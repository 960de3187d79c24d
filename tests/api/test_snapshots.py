"""snapshot_* (api-network-quota-storage.md §5.4) through the client (RabbitMQ ->
conductor -> PostgreSQL) and on SQLite."""

import uuid

import pytest

from schemas import exceptions
from schemas.context import RequestContext, get_admin_context

MINE = {"project_id": "project1", "user_id": "user1"}


async def test_create_returns_the_row_with_names_and_get_reads_it(db, admin, user):
    snap = await db.snapshot_create(user, {**MINE, "volume_id": "vol-1", "volume_size": "2",
                                           "status": "creating", "bogus": 1})
    assert uuid.UUID(snap["id"]) and snap["bogus"] == 1  # echoed, not stored
    assert snap["name"] == f"snapshot-{snap['id']}" and snap["volume_name"] == "volume-vol-1"
    assert snap["volume_size"] == "2"  # the caller's value, as Nova's in-memory row
    assert snap["created_at"] is not None and snap["updated_at"] is None
    assert snap["deleted"] is False
    got = await db.snapshot_get(user, snap["id"])
    assert got["volume_size"] == 2 and got["name"] == snap["name"]
    assert "bogus" not in got
    assert {k: got[k] for k in snap if k not in ("volume_size", "bogus")} == \
        {k: v for k, v in snap.items() if k not in ("volume_size", "bogus")}
    forced = await db.snapshot_create(admin, {"id": "snap-1"})
    assert forced["id"] == "snap-1" and forced["volume_name"] == "volume-None"
    assert (await db.snapshot_create(admin, {"id": ""}))["id"] != ""
    with pytest.raises(exceptions.DBError):
        await db.snapshot_create(admin, {"id": "snap-1"})
    with pytest.raises(exceptions.InvalidInput, match="snapshots.volume_size"):
        await db.snapshot_create(admin, {"volume_size": "big"})
    with pytest.raises(exceptions.SnapshotNotFound) as info:
        await db.snapshot_get(user, "missing")
    assert info.value.kwargs == {"snapshot_id": "missing", "code": 404}


async def test_scoping_and_access_levels(db, admin, user, other_user, db_config,
                                         monkeypatch):
    # 2012.2's create into another project (strict isolation refuses it with
    # NotAuthorized: tests/api/test_isolation_matrix.py)
    monkeypatch.setattr(db_config, "isolation", "nova")
    mine = await db.snapshot_create(user, {**MINE, "volume_id": "v"})
    theirs = await db.snapshot_create(admin, {"project_id": "project2", "volume_id": "v"})
    # Nova returns whatever was inserted, even for another project
    foreign = await db.snapshot_create(user, {"project_id": "project2", "volume_id": "w"})
    assert foreign["project_id"] == "project2"
    with pytest.raises(exceptions.SnapshotNotFound):
        await db.snapshot_get(user, theirs["id"])
    assert (await db.snapshot_get(other_user, theirs["id"]))["id"] == theirs["id"]
    assert [s["id"] for s in await db.snapshot_get_all_for_volume(user, "v")] == [mine["id"]]
    assert sorted(s["id"] for s in await db.snapshot_get_all_for_volume(admin, "v")) == \
        sorted([mine["id"], theirs["id"]])
    assert [s["id"] for s in await db.snapshot_get_all_by_project(user, "project1")] == \
        [mine["id"]]
    with pytest.raises(exceptions.NotAuthorized):
        await db.snapshot_get_all_by_project(user, "project2")
    assert len(await db.snapshot_get_all_by_project(admin, "project2")) == 2
    with pytest.raises(exceptions.SnapshotNotFound):
        await db.snapshot_update(user, theirs["id"], {"status": "x"})
    for call in (db.snapshot_get_all(user), db.snapshot_destroy(user, mine["id"])):
        with pytest.raises(exceptions.AdminRequired):
            await call
    with pytest.raises(exceptions.NotAuthorized):
        await db.snapshot_get(RequestContext(None, None), mine["id"])


async def test_destroy_and_read_deleted(db, admin):
    a = await db.snapshot_create(admin, {"id": "a", "volume_id": "v", "project_id": "p"})
    await db.snapshot_create(admin, {"id": "b", "volume_id": "v", "project_id": "p"})
    assert await db.snapshot_destroy(admin, "a") is None
    assert await db.snapshot_destroy(admin, "missing") is None
    yes, only = get_admin_context("yes"), get_admin_context("only")
    with pytest.raises(exceptions.SnapshotNotFound):
        await db.snapshot_get(admin, "a")
    dead = await db.snapshot_get(yes, "a")
    assert dead["deleted"] is True and dead["deleted_at"] is not None
    assert dead["updated_at"] is None and dead["created_at"] == a["created_at"]
    assert [s["id"] for s in await db.snapshot_get_all(admin)] == ["b"]
    assert [s["id"] for s in await db.snapshot_get_all(yes)] == ["a", "b"]
    assert [s["id"] for s in await db.snapshot_get_all(only)] == ["a"]
    assert [s["id"] for s in await db.snapshot_get_all_by_project(only, "p")] == ["a"]
    # for a volume: live rows only, whatever the context says
    assert [s["id"] for s in await db.snapshot_get_all_for_volume(yes, "v")] == ["b"]
    assert await db.snapshot_get_all_for_volume(admin, "nothing") == []


async def test_update_returns_none_and_stores_values(db, user):
    snap = await db.snapshot_create(user, {**MINE, "status": "creating"})
    assert await db.snapshot_update(user, snap["id"], {"status": "available",
                                                       "progress": "100%", "bogus": 1}) \
        is None
    got = await db.snapshot_get(user, snap["id"])
    assert (got["status"], got["progress"]) == ("available", "100%")
    assert got["updated_at"] is not None
    with pytest.raises(exceptions.SnapshotNotFound) as info:
        await db.snapshot_update(user, "missing", {"status": "x"})
    assert info.value.kwargs == {"snapshot_id": "missing", "code": 404}
    with pytest.raises(exceptions.InvalidInput):
        await db.snapshot_update(user, snap["id"], {"volume_size": "huge"})
