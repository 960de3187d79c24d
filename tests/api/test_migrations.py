"""migration_* (api-compute.md §3.5), through the client and on SQLite."""

import datetime as dt

import pytest
from sqlalchemy import update

from conductor.db.models import Migration
from schemas import exceptions
from schemas.context import get_admin_context

MIGRATIONS = Migration.__table__
OLD = dt.datetime(2000, 1, 1, 12, 0, 0)


@pytest.fixture
def raw(_api_backend, db):
    """The engine behind ``db`` (already emptied): no API function deletes migrations."""
    return _api_backend[0]


async def _delete(raw, migration_id):
    async with raw.begin() as conn:
        await conn.execute(update(MIGRATIONS).where(MIGRATIONS.c.id == migration_id)
                           .values(deleted=True, deleted_at=OLD,
                                   updated_at=MIGRATIONS.c.updated_at))


async def test_create_get_and_update(db, admin, raw):
    m = await db.migration_create(admin, {"instance_uuid": "not-an-instance",
                                          "status": "migrating", "old_instance_type_id": "3",
                                          "updated_at": OLD, "ignored": True})
    assert m["id"] > 0 and m["updated_at"] == OLD and m["deleted"] is False
    assert m["old_instance_type_id"] == "3" and m["ignored"] is True  # echoed as given
    got = await db.migration_get(admin, m["id"])
    assert "ignored" not in got
    assert got["old_instance_type_id"] == 3 and got["updated_at"] == OLD
    assert got["instance_uuid"] == "not-an-instance"  # no foreign key (models.md §3)
    await _delete(raw, m["id"])
    # deleted rows are always visible, to get and to update
    assert (await db.migration_get(get_admin_context("no"), m["id"]))["deleted"] is True
    updated = await db.migration_update(admin, m["id"], {"status": "finished"})
    assert updated["status"] == "finished" and updated["updated_at"] > OLD
    assert updated["deleted"] is True
    assert await db.migration_get(admin, m["id"]) == updated


async def test_missing_migrations(db, admin):
    for bad in (42, "fake", None, 2**40):
        with pytest.raises(exceptions.MigrationNotFound) as info:
            await db.migration_get(admin, bad)
        assert info.value.kwargs == {"migration_id": bad, "code": 404}
    with pytest.raises(exceptions.MigrationNotFound) as info:
        await db.migration_update(admin, 42, {"status": "x"})
    assert info.value.kwargs == {"migration_id": 42, "code": 404}
    with pytest.raises(exceptions.InvalidInput, match="migrations.new_instance_type_id"):
        await db.migration_create(admin, {"new_instance_type_id": "big"})


async def test_get_by_instance_and_status(db, admin, raw):
    first = await db.migration_create(admin, {"instance_uuid": "i1", "status": "finished"})
    await db.migration_create(admin, {"instance_uuid": "i1", "status": "finished"})
    other = await db.migration_create(admin, {"instance_uuid": "i1", "status": "error"})
    await _delete(raw, first["id"])
    found = await db.migration_get_by_instance_and_status(admin, "i1", "finished")
    assert found["id"] == first["id"] and found["deleted"] is True
    found = await db.migration_get_by_instance_and_status(admin, "i1", "error")
    assert found["id"] == other["id"]
    with pytest.raises(exceptions.MigrationNotFoundByStatus) as info:
        await db.migration_get_by_instance_and_status(admin, "i1", "FINISHED")
    assert info.value.kwargs == {"instance_id": "i1", "status": "FINISHED", "code": 404}
    assert isinstance(info.value, exceptions.MigrationNotFound)


async def test_unconfirmed_by_dest_compute(db, admin, raw):
    assert await db.migration_get_unconfirmed_by_dest_compute(admin, 10, "fake_host2") == []
    old = await db.migration_create(admin, {"status": "finished", "dest_compute":
                                            "fake_host2", "updated_at": OLD})
    await db.migration_create(admin, {"status": "finished", "dest_compute": "fake_host2"})
    await db.migration_create(admin, {"status": "Finished", "dest_compute": "fake_host2",
                                      "updated_at": OLD})
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    await db.migration_create(admin, {"status": "finished", "dest_compute": "fake_host2",
                                      "updated_at": now})
    gone = await db.migration_create(admin, {"status": "finished",
                                             "dest_compute": "fake_host2",
                                             "updated_at": OLD})
    await _delete(raw, gone["id"])
    found = await db.migration_get_unconfirmed_by_dest_compute(admin, 10, "fake_host2")
    assert [m["id"] for m in found] == [old["id"], gone["id"]]
    assert await db.migration_get_unconfirmed_by_dest_compute(admin, 10, "fake_host") == []
    # a window wider than the row's age (or than the calendar) excludes it
    for window in (3 * 10**9, 10**12, 2**70):
        assert await db.migration_get_unconfirmed_by_dest_compute(
            admin, window, "fake_host2") == []
    assert len(await db.migration_get_unconfirmed_by_dest_compute(
        admin, -(10**12), "fake_host2")) == 3
    await db.migration_update(admin, old["id"], {"status": "CONFIRMED"})
    found = await db.migration_get_unconfirmed_by_dest_compute(admin, 10.5, "fake_host2")
    assert [m["id"] for m in found] == [gone["id"]]
    with pytest.raises(exceptions.InvalidInput):
        await db.migration_get_unconfirmed_by_dest_compute(admin, "ten", "fake_host2")


async def test_admin_only(db, user):
    for call in (db.migration_create(user, {}), db.migration_update(user, 1, {}),
                 db.migration_get(user, 1),
                 db.migration_get_by_instance_and_status(user, "i", "s"),
                 db.migration_get_unconfirmed_by_dest_compute(user, 1, "h")):
        with pytest.raises(exceptions.AdminRequired):
            await call
