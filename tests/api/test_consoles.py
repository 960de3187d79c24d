"""console_pool_* and console_* (api-compute.md §3.14), through the client and on SQLite."""

import pytest
from sqlalchemy import update

from conductor.db.models import Console, ConsolePool
from schemas import exceptions
from schemas.context import RequestContext

POOLS = ConsolePool.__table__
CONSOLES = Console.__table__
# None of these functions checks the context.
ANON = RequestContext(None, None)


@pytest.fixture
def raw(_api_backend, db):
    """The engine behind ``db`` (already emptied): no API function soft-deletes these."""
    return _api_backend[0]


async def _delete(raw, table, row_id):
    async with raw.begin() as conn:
        await conn.execute(update(table).where(table.c.id == row_id).values(deleted=True))


async def _pool(db, **values):
    base = {"host": "proxy1", "console_type": "vnc", "compute_host": "cmp1",
            "address": "10.0.0.1", "username": "u", "password": "p"}
    return await db.console_pool_create(ANON, {**base, **values})


async def test_pools_by_host_and_type(db, raw):
    pool = await _pool(db)
    assert pool["id"] > 0 and pool["deleted"] is False and "consoles" not in pool
    dead_pool = await _pool(db)
    await _delete(raw, POOLS, dead_pool["id"])
    other = await _pool(db, compute_host="cmp2")
    await _pool(db, console_type="xvp")
    c1 = await db.console_create(ANON, {"pool_id": pool["id"], "instance_uuid": "i1",
                                        "port": 5900})
    c2 = await db.console_create(ANON, {"pool_id": pool["id"], "instance_uuid": "i2"})
    await _delete(raw, CONSOLES, c2["id"])
    got = await db.console_pool_get_by_host_type(ANON, "cmp1", "proxy1", "vnc")
    assert got["id"] == pool["id"]
    # all its consoles, deleted or not
    assert [(c["id"], c["deleted"]) for c in got["consoles"]] == \
        [(c1["id"], False), (c2["id"], True)]
    assert {k: got[k] for k in pool} == pool
    with pytest.raises(exceptions.ConsolePoolNotFoundForHostType) as info:
        await db.console_pool_get_by_host_type(ANON, "cmp9", "proxy1", "vnc")
    assert info.value.kwargs == {"host": "proxy1", "console_type": "vnc",
                                 "compute_host": "cmp9", "code": 404}
    found = await db.console_pool_get_all_by_host_type(ANON, "proxy1", "vnc")
    assert [p["id"] for p in found] == [pool["id"], other["id"]]
    assert [len(p["consoles"]) for p in found] == [2, 0]
    assert await db.console_pool_get_all_by_host_type(ANON, "proxy9", "vnc") == []


async def test_consoles_get_delete(db, raw):
    pool = await _pool(db)
    c1 = await db.console_create(ANON, {"pool_id": pool["id"], "instance_uuid": "i1",
                                        "port": "5900", "instance_name": "inst"})
    assert c1["port"] == "5900" and c1["deleted"] is False  # echoed as given
    c2 = await db.console_create(ANON, {"pool_id": pool["id"], "instance_uuid": "i1"})
    c3 = await db.console_create(ANON, {"pool_id": pool["id"], "instance_uuid": "i2"})
    await _delete(raw, CONSOLES, c1["id"])
    # deleted ones included
    got = await db.console_get_by_pool_instance(ANON, pool["id"], "i1")
    assert got["id"] == c1["id"] and got["port"] == 5900 and got["deleted"] is True
    assert got["pool"]["id"] == pool["id"] and "consoles" not in got["pool"]
    with pytest.raises(exceptions.ConsoleNotFoundInPoolForInstance) as info:
        await db.console_get_by_pool_instance(ANON, pool["id"], "i9")
    assert info.value.kwargs == {"pool_id": pool["id"], "instance_uuid": "i9", "code": 404}
    listed = await db.console_get_all_by_instance(ANON, "i1")
    assert [c["id"] for c in listed] == [c1["id"], c2["id"]] and "pool" not in listed[0]
    assert await db.console_get_all_by_instance(ANON, "i9") == []

    assert (await db.console_get(ANON, c1["id"]))["pool"]["id"] == pool["id"]
    assert (await db.console_get(ANON, c3["id"], "i2"))["id"] == c3["id"]
    with pytest.raises(exceptions.ConsoleNotFoundForInstance) as info:
        await db.console_get(ANON, c3["id"], "i1")
    assert info.value.kwargs == {"console_id": c3["id"], "instance_uuid": "i1", "code": 404}
    # an empty uuid still filters, but the error is the plain one
    with pytest.raises(exceptions.ConsoleNotFound) as info:
        await db.console_get(ANON, c3["id"], "")
    assert type(info.value) is exceptions.ConsoleNotFound
    for bad in (999, "fake"):
        with pytest.raises(exceptions.ConsoleNotFound) as info:
            await db.console_get(ANON, bad)
        assert info.value.kwargs == {"console_id": bad, "code": 404}

    # a hard delete, silent when there is nothing to delete
    assert await db.console_delete(ANON, c1["id"]) is None
    assert await db.console_delete(ANON, c1["id"]) is None
    assert await db.console_delete(ANON, "fake") is None
    with pytest.raises(exceptions.ConsoleNotFound):
        await db.console_get(ANON, c1["id"])
    assert [c["id"] for c in await db.console_get_all_by_instance(ANON, "i1")] == [c2["id"]]
