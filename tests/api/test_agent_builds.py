"""agent_build_* (api-compute.md §3.15), through the client and on SQLite."""

import pytest
from sqlalchemy import select

from conductor.db.models import AgentBuild
from schemas import exceptions
from schemas.context import get_admin_context

BUILDS = AgentBuild.__table__
TRIPLE = {"hypervisor": "xen", "os": "linux", "architecture": "x86_64"}


async def _build(db, admin, **values):
    return await db.agent_build_create(admin, {**TRIPLE, "version": "1", "url": "u",
                                               "md5hash": "h", **values})


async def test_create_get_by_triple_and_all(db, admin):
    a = await _build(db, admin)
    assert a["id"] > 0 and a["deleted"] is False and a["version"] == "1"
    b = await _build(db, admin, version="2")
    w = await _build(db, admin, os="windows")
    assert await db.agent_build_get_by_triple(admin, "xen", "linux", "x86_64") == a
    assert await db.agent_build_get_by_triple(admin, "kvm", "linux", "x86_64") is None
    assert [r["id"] for r in await db.agent_build_get_all(admin)] == [a["id"], b["id"],
                                                                      w["id"]]
    await db.agent_build_destroy(admin, a["id"])
    # never deleted rows
    yes = get_admin_context("yes")
    assert (await db.agent_build_get_by_triple(yes, "xen", "linux", "x86_64"))["id"] == \
        b["id"]
    assert [r["id"] for r in await db.agent_build_get_all(yes)] == [b["id"], w["id"]]


@pytest.fixture
def raw(_api_backend, db):
    """The engine behind ``db``: the getters never show deleted builds."""
    return _api_backend[0]


async def _stored(raw, build_id):
    async with raw.connect() as conn:
        return dict((await conn.execute(select(BUILDS).where(BUILDS.c.id == build_id)))
                    .mappings().one())


async def test_destroy_and_update(db, admin, raw):
    a = await _build(db, admin)
    assert await db.agent_build_update(admin, a["id"], {"url": "new", "other": 1}) is None
    updated = (await db.agent_build_get_all(admin))[0]
    assert updated["url"] == "new" and updated["updated_at"] is not None
    assert await db.agent_build_destroy(admin, a["id"]) is None
    assert await db.agent_build_get_all(admin) == []
    first = await _stored(raw, a["id"])
    # a bulk soft delete: updated_at stays; a second one restamps deleted_at
    assert first["deleted"] is True and first["updated_at"] == updated["updated_at"]
    await db.agent_build_destroy(admin, a["id"])
    second = await _stored(raw, a["id"])
    assert second["deleted_at"] > first["deleted_at"]
    assert second["updated_at"] == first["updated_at"]
    # update loads deleted rows too
    await db.agent_build_update(get_admin_context("no"), a["id"], {"version": "9"})
    assert (await _stored(raw, a["id"]))["version"] == "9"
    # nothing happens for an unknown id
    for bad in (999, "fake", None):
        assert await db.agent_build_destroy(admin, bad) is None
        assert await db.agent_build_update(admin, bad, {"url": "x"}) is None
    with pytest.raises(exceptions.InvalidInput, match="agent_builds.url"):
        await db.agent_build_update(admin, a["id"], {"url": "x" * 300})


async def test_admin_only(db, user):
    for call in (db.agent_build_create(user, TRIPLE),
                 db.agent_build_get_by_triple(user, "xen", "linux", "x86_64"),
                 db.agent_build_get_all(user), db.agent_build_destroy(user, 1),
                 db.agent_build_update(user, 1, {})):
        with pytest.raises(exceptions.AdminRequired):
            await call
