"""dnsdomain_* (api-network-quota-storage.md §3.2) through the client (RabbitMQ ->
conductor -> PostgreSQL) and on SQLite; registration races on PostgreSQL only."""

import asyncio

import pytest
from sqlalchemy import func, insert, select, text

from conductor.db.models import DNSDomain
from conductor.db.session import Session
from schemas import exceptions
from schemas.context import RequestContext
from tests.conftest import _wipe

ANONYMOUS = RequestContext(None, None)
TABLE = DNSDomain.__table__


@pytest.fixture
def raw(_api_backend, db):
    """The engine behind ``db`` (already emptied)."""
    return _api_backend[0]


async def test_register_for_zone_then_project_and_read_back(db, admin, user):
    assert await db.dnsdomain_get(user, "example.org") is None
    assert await db.dnsdomain_register_for_zone(admin, "example.org", "zone1") is None
    got = await db.dnsdomain_get(user, "example.org")  # TESTED
    assert got["scope"] == "private" and got["availability_zone"] == "zone1"
    assert got["project_id"] is None and got["domain"] == "example.org"
    assert set(got) == {"domain", "scope", "availability_zone", "project_id",
                        "created_at", "updated_at", "deleted_at", "deleted"}
    assert got["created_at"] is not None and got["updated_at"] is None
    # re-registering keeps the column the other registration set
    assert await db.dnsdomain_register_for_project(admin, "example.org", "proj") is None
    got = await db.dnsdomain_get(user, "example.org")  # TESTED
    assert (got["scope"], got["project_id"], got["availability_zone"]) == \
        ("public", "proj", "zone1")
    assert got["updated_at"] is not None
    await db.dnsdomain_register_for_zone(admin, "example.org", "zone2")
    got = await db.dnsdomain_get(admin, "example.org")
    assert (got["scope"], got["project_id"], got["availability_zone"]) == \
        ("private", "proj", "zone2")
    await db.dnsdomain_register_for_project(admin, "public.example", "p2")
    fresh = await db.dnsdomain_get(admin, "public.example")
    assert (fresh["scope"], fresh["project_id"], fresh["availability_zone"]) == \
        ("public", "p2", None)
    assert await db.dnsdomain_list(user) == ["example.org", "public.example"]


async def test_unregister_hard_deletes_and_deleted_rows_stay_hidden(db, raw, admin, user):
    async with raw.begin() as conn:
        await Session(conn).insert(DNSDomain, {"domain": "gone.example", "scope": "public",
                                               "deleted": True})
    await db.dnsdomain_register_for_zone(admin, "live.example", "z")
    assert await db.dnsdomain_list(RequestContext("user1", "project1",
                                                  read_deleted="yes")) == ["live.example"]
    assert await db.dnsdomain_get(RequestContext("user1", "project1", read_deleted="only"),
                                  "gone.example") is None
    assert await db.dnsdomain_unregister(admin, "gone.example") is None
    assert await db.dnsdomain_unregister(admin, "live.example") is None
    assert await db.dnsdomain_unregister(admin, "never.example") is None
    async with raw.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(TABLE))).scalar() == 0
    assert await db.dnsdomain_list(user) == []
    assert await db.dnsdomain_get(user, "live.example") is None


async def test_access_checks(db, admin, user):
    for call in (db.dnsdomain_register_for_zone(user, "a.example", "z"),
                 db.dnsdomain_register_for_project(user, "a.example", "p"),
                 db.dnsdomain_unregister(user, "a.example")):
        with pytest.raises(exceptions.AdminRequired) as info:
            await call
        assert info.value.kwargs == {"code": 403}
    for call in (db.dnsdomain_list(ANONYMOUS), db.dnsdomain_get(ANONYMOUS, "a.example")):
        with pytest.raises(exceptions.NotAuthorized):
            await call
    assert await db.dnsdomain_list(admin) == []
    with pytest.raises(exceptions.InvalidInput):
        await db.dnsdomain_register_for_zone(admin, "x" * 513, "z")


async def _blocked_inserts(engine, expected):
    """Wait (by polling, no sleep) until ``expected`` backends wait on a dns_domains key."""
    probe = text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                 " AND wait_event_type = 'Lock' AND query ILIKE 'INSERT INTO dns_domains%'")
    # autocommit: pg_stat_activity is a snapshot taken once per transaction
    async with engine.execution_options(isolation_level="AUTOCOMMIT").connect() as conn:
        for _ in range(5000):
            if (await conn.execute(probe)).scalar() >= expected:
                return
    raise AssertionError(f"{expected} registrations never queued behind the first insert")


async def test_concurrent_first_registrations_collide_and_one_lands(rpc_client, pg_engine):
    """PostgreSQL only.  An uncommitted insert of the key holds every registration at its
    own insert; once it rolls back they race for the key: one lands, the rest fail."""
    await _wipe(pg_engine)
    admin = RequestContext("admin", "admin", is_admin=True)
    callers = 6
    async with pg_engine.connect() as blocker:
        held = await blocker.begin()
        await blocker.execute(insert(TABLE).values(domain="new.example", scope="held"))
        calls = [asyncio.ensure_future(
            rpc_client.dnsdomain_register_for_zone(admin, "new.example", f"z{i}"))
            for i in range(callers)]
        await _blocked_inserts(pg_engine, callers)
        await held.rollback()
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert results.count(None) == 1, results
    assert all(isinstance(r, exceptions.DBError) for r in results if r is not None), results
    got = await rpc_client.dnsdomain_get(admin, "new.example")
    assert (got["scope"], got["availability_zone"]) == \
        ("private", f"z{results.index(None)}")


async def test_concurrent_re_registrations_all_land(rpc_client, pg_engine):
    """PostgreSQL only: re-registrations of an existing domain wait on its row lock."""
    await _wipe(pg_engine)
    admin = RequestContext("admin", "admin", is_admin=True)
    await rpc_client.dnsdomain_register_for_zone(admin, "new.example", "z")
    calls = [rpc_client.dnsdomain_register_for_project(admin, "new.example", f"p{i}")
             if i % 2 else
             rpc_client.dnsdomain_register_for_zone(admin, "new.example", f"z{i}")
             for i in range(16)]
    assert await asyncio.gather(*calls) == [None] * 16
    got = await rpc_client.dnsdomain_get(admin, "new.example")
    assert got["project_id"] in {f"p{i}" for i in range(1, 16, 2)}
    assert got["availability_zone"] in {f"z{i}" for i in range(0, 16, 2)}
    assert await rpc_client.dnsdomain_list(admin) == ["new.example"]
