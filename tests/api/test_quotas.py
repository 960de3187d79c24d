"""quota_*, quota_class_*, quota_usage_* and quota_destroy_all_by_project (api-network-quota-
storage.md §4.1) through the client (RabbitMQ -> conductor -> PostgreSQL) and on SQLite."""

import datetime as dt

import pytest
from sqlalchemy import select

from conductor.db.models import Quota, QuotaUsage, Reservation
from schemas import exceptions
from schemas.context import RequestContext, get_admin_context

ANONYMOUS = RequestContext(None, None)
FUTURE = dt.datetime(2100, 1, 1)


@pytest.fixture
def raw(_api_backend):
    """The engine behind ``db``, to look at soft-deleted rows no API reader returns."""
    return _api_backend[0]


async def test_quota_create_get_all_update_destroy(db, admin, user):
    q = await db.quota_create(admin, "project1", "instances", 5)
    assert q["project_id"] == "project1" and q["resource"] == "instances"
    assert q["hard_limit"] == 5 and q["deleted"] is False and q["updated_at"] is None
    assert await db.quota_get(admin, "project1", "instances") == q
    # No duplicate check: the single-row reader sees the lowest id, the dict the highest.
    dup = await db.quota_create(admin, "project1", "instances", 7)
    await db.quota_create(admin, "project1", "cores", None)
    await db.quota_create(admin, "project2", "instances", 1)
    assert (await db.quota_get(user, "project1", "instances"))["id"] == q["id"]
    assert await db.quota_get_all_by_project(user, "project1") == {
        "project_id": "project1", "instances": 7, "cores": None}
    assert await db.quota_get_all_by_project(admin, "nobody") == {"project_id": "nobody"}

    assert await db.quota_update(admin, "project1", "instances", 9) is None
    got = await db.quota_get(admin, "project1", "instances")
    assert got["hard_limit"] == 9 and got["updated_at"] is not None
    assert (await db.quota_get(admin, "project1", "instances"))["id"] == q["id"]

    assert await db.quota_destroy(admin, "project1", "instances") is None
    # the next row of the pair is now the first one
    assert (await db.quota_get(admin, "project1", "instances"))["id"] == dup["id"]
    await db.quota_destroy(admin, "project1", "instances")
    with pytest.raises(exceptions.ProjectQuotaNotFound) as info:
        await db.quota_get(get_admin_context("yes"), "project1", "instances")
    assert info.value.kwargs == {"project_id": "project1", "code": 404}
    assert await db.quota_get_all_by_project(admin, "project1") == {
        "project_id": "project1", "cores": None}
    for call in (db.quota_update(admin, "project1", "instances", 1),
                 db.quota_destroy(admin, "project1", "instances")):
        with pytest.raises(exceptions.ProjectQuotaNotFound) as info:
            await call
        assert info.value.kwargs == {"project_id": "project1", "code": 404}


async def test_quota_access(db_config, db, admin, user, monkeypatch):
    # reads across projects as 2012.2 answers them (strict isolation: test_isolation.py)
    monkeypatch.setattr(db_config, "isolation", "nova")
    await db.quota_create(admin, "project2", "instances", 3)
    # quota_get has no project check; the dict reader has one
    assert (await db.quota_get(user, "project2", "instances"))["hard_limit"] == 3
    with pytest.raises(exceptions.NotAuthorized) as info:
        await db.quota_get_all_by_project(user, "project2")
    assert info.value.kwargs == {"code": 403}
    for call in (db.quota_create(user, "project1", "instances", 1),
                 db.quota_update(user, "project2", "instances", 1),
                 db.quota_destroy(user, "project2", "instances"),
                 db.quota_destroy_all_by_project(user, "project1")):
        with pytest.raises(exceptions.AdminRequired):
            await call
    with pytest.raises(exceptions.NotAuthorized):
        await db.quota_get(ANONYMOUS, "project2", "instances")
    with pytest.raises(exceptions.InvalidInput):
        await db.quota_create(admin, "project1", "instances", "many")
    assert (await db.quota_get(admin, "project2", "instances"))["hard_limit"] == 3


async def test_quota_classes(db, admin, user):
    c = await db.quota_class_create(admin, "gold", "instances", 50)
    assert c["class_name"] == "gold" and c["hard_limit"] == 50 and c["deleted"] is False
    await db.quota_class_create(admin, "gold", "cores", 100)
    await db.quota_class_create(admin, "silver", "cores", 10)
    assert await db.quota_class_get(user, "gold", "instances") == c  # no class check
    gold_user = RequestContext("user1", "project1", quota_class="gold")
    expected = {"class_name": "gold", "instances": 50, "cores": 100}
    assert await db.quota_class_get_all_by_name(gold_user, "gold") == expected
    assert await db.quota_class_get_all_by_name(admin, "gold") == expected
    for ctx in (user, gold_user):
        with pytest.raises(exceptions.NotAuthorized):
            await db.quota_class_get_all_by_name(ctx, "silver")

    assert await db.quota_class_update(admin, "gold", "instances", 60) is None
    got = await db.quota_class_get(admin, "gold", "instances")
    assert got["hard_limit"] == 60 and got["updated_at"] is not None
    assert await db.quota_class_destroy(admin, "gold", "instances") is None
    for call in (db.quota_class_get(admin, "gold", "instances"),
                 db.quota_class_update(admin, "gold", "instances", 1),
                 db.quota_class_destroy(admin, "gold", "instances")):
        with pytest.raises(exceptions.QuotaClassNotFound) as info:
            await call
        assert info.value.kwargs == {"class_name": "gold", "code": 404}

    await db.quota_class_create(admin, "gold", "ram", 1024)
    assert await db.quota_class_destroy_all_by_name(admin, "gold") is None
    assert await db.quota_class_destroy_all_by_name(admin, "nothing") is None
    assert await db.quota_class_get_all_by_name(admin, "gold") == {"class_name": "gold"}
    assert (await db.quota_class_get(admin, "silver", "cores"))["hard_limit"] == 10
    gone = await db.quota_class_get_all_by_name(get_admin_context("only"), "gold")
    assert gone == {"class_name": "gold"}  # forced "no": deleted rows never show
    for call in (db.quota_class_create(user, "gold", "instances", 1),
                 db.quota_class_update(user, "silver", "cores", 1),
                 db.quota_class_destroy(user, "silver", "cores"),
                 db.quota_class_destroy_all_by_name(user, "silver")):
        with pytest.raises(exceptions.AdminRequired):
            await call


async def test_quota_usages(db_config, db, admin, user, monkeypatch):
    # reads across projects as 2012.2 answers them (strict isolation: test_isolation.py)
    monkeypatch.setattr(db_config, "isolation", "nova")
    u = await db.quota_usage_create(admin, "project1", "instances", 2, 1, None)
    assert u["in_use"] == 2 and u["reserved"] == 1 and u["until_refresh"] is None
    assert u["total"] == 3 and u["deleted"] is False
    assert await db.quota_usage_get(user, "project1", "instances") == u
    await db.quota_usage_create(admin, "project1", "cores", 4, 0, 5)
    other = await db.quota_usage_create(admin, "project2", "instances", 9, 9, None)
    assert (await db.quota_usage_get(user, "project2", "instances"))["id"] == other["id"]
    assert await db.quota_usage_get_all_by_project(user, "project1") == {
        "project_id": "project1", "instances": {"in_use": 2, "reserved": 1},
        "cores": {"in_use": 4, "reserved": 0}}
    with pytest.raises(exceptions.NotAuthorized):
        await db.quota_usage_get_all_by_project(user, "project2")

    assert await db.quota_usage_update(admin, "project1", "instances", 5, 0, 3) is None
    got = await db.quota_usage_get(admin, "project1", "instances")
    assert (got["in_use"], got["reserved"], got["until_refresh"], got["total"]) == (5, 0, 3, 5)
    assert got["updated_at"] is not None
    assert await db.quota_usage_destroy(admin, "project1", "instances") is None
    for call in (db.quota_usage_get(admin, "project1", "instances"),
                 db.quota_usage_update(admin, "project1", "instances", 1, 1, None),
                 db.quota_usage_destroy(admin, "project1", "instances")):
        with pytest.raises(exceptions.QuotaUsageNotFound) as info:
            await call
        assert info.value.kwargs == {"project_id": "project1", "code": 404}
    for call in (db.quota_usage_create(user, "project1", "ram", 0, 0, None),
                 db.quota_usage_update(user, "project1", "cores", 0, 0, None),
                 db.quota_usage_destroy(user, "project1", "cores")):
        with pytest.raises(exceptions.AdminRequired):
            await call


async def test_destroy_all_by_project_soft_deletes_quotas_usages_and_reservations(db, admin,
                                                                                  raw):
    await db.quota_create(admin, "project1", "instances", 5)
    await db.quota_create(admin, "project2", "instances", 5)
    usage = await db.quota_usage_create(admin, "project1", "instances", 1, 1, None)
    kept = await db.quota_usage_create(admin, "project2", "instances", 1, 1, None)
    await db.reservation_create(admin, "r-1", usage, "project1", "instances", 1, FUTURE)
    await db.reservation_create(admin, "r-2", kept, "project2", "instances", 1, FUTURE)

    assert await db.quota_destroy_all_by_project(admin, "project1") is None
    assert await db.quota_destroy_all_by_project(admin, "nobody") is None
    assert await db.quota_get_all_by_project(admin, "project1") == {"project_id": "project1"}
    assert await db.quota_usage_get_all_by_project(admin, "project1") == {
        "project_id": "project1"}
    assert await db.reservation_get_all_by_project(admin, "project1") == {
        "project_id": "project1"}
    with pytest.raises(exceptions.ReservationNotFound):
        await db.reservation_get(admin, "r-1")
    async with raw.connect() as conn:
        for model in (Quota, QuotaUsage, Reservation):
            t = model.__table__
            rows = (await conn.execute(select(t).where(t.c.project_id == "project1"))).all()
            # row soft delete: updated_at moves with deleted_at
            assert rows and all(r.deleted and r.deleted_at and r.updated_at for r in rows)
    assert (await db.quota_get(admin, "project2", "instances"))["hard_limit"] == 5
    assert (await db.reservation_get(admin, "r-2"))["project_id"] == "project2"
    assert (await db.quota_usage_get(admin, "project2", "instances"))["id"] == kept["id"]
