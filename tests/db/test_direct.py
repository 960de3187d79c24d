"""Statements run straight on asyncpg (conductor.db.direct) answer as SQLAlchemy does.

The API suites run every function on PostgreSQL through this path and on SQLite without
it; these tests pin what those cannot see: the two paths' rows are equal, a connection
lost under a direct read is never handed out again, and the shapes cached are bounded.
"""

import asyncio

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import text

from conductor.db import session as session_module
from conductor.db.models import Instance, Service
from conductor.db.session import Session
from conductor.dispatch import Dispatcher
from conductor.handlers.instances import FULL
from schemas.context import RequestContext, get_admin_context
from tests.support import LocalClient

ADMIN = get_admin_context()


async def _seed(pg_engine):
    from tests.conftest import _wipe

    await _wipe(pg_engine)
    db = LocalClient(Dispatcher(pg_engine))
    flavor = await db.instance_type_create(ADMIN, {"name": "m1", "flavorid": "1",
                                                   "memory_mb": 512, "vcpus": 1,
                                                   "root_gb": 1, "rxtx_factor": 1.5})
    instance = await db.instance_create(
        ADMIN, {"host": "h0", "project_id": "p1", "user_id": "u1",
                "instance_type_id": flavor["id"], "metadata": {"k": "v"},
                "system_metadata": {"s": "t"}, "security_groups": ["default"],
                "info_cache": {"network_info": "[]"}})
    service = await db.service_create(ADMIN, {"host": "h0", "topic": "compute"})
    await db.compute_node_create(ADMIN, {"service_id": service["id"], "stats": {"a": 1}})
    return db, instance, service


async def test_direct_reads_equal_sqlalchemy_reads(pg_engine, handlers):
    _, instance, service = await _seed(pg_engine)
    owner = RequestContext("u1", "p1")
    lookups = [(ADMIN, Instance, "uuid", instance["uuid"], FULL),
               (owner, Instance, "uuid", instance["uuid"], FULL),
               (RequestContext("u2", "p2"), Instance, "uuid", instance["uuid"], FULL),
               (ADMIN, Service, "id", service["id"], ("compute_node",)),
               (ADMIN, Instance, "uuid", "00000000-0000-4000-8000-000000000000", ())]
    read_engine = pg_engine.execution_options(isolation_level="AUTOCOMMIT")
    for context, model, column, value, joins in lookups:
        async with read_engine.connect() as conn:
            fast = Session(conn, "test")
            found = await fast.get_by(context, model, column, value, joins)
            assert fast._driver is not None  # the lookup ran on asyncpg
        async with pg_engine.connect() as conn:  # not begun: SQLAlchemy runs it
            slow = Session(conn, "test")
            expected = await slow.get_by(context, model, column, value, joins)
            assert slow._driver is None
        assert found == expected
        if found is not None:
            assert {k: type(v) for k, v in found.items()} == \
                {k: type(v) for k, v in expected.items()}
    assert found is None


@pytest.mark.parametrize("noticed", [False, True], ids=["mid-statement", "noticed-first"])
async def test_a_connection_lost_under_a_direct_read_is_not_reused(pg_engine, handlers,
                                                                    noticed):
    _, instance, _ = await _seed(pg_engine)
    read_engine = pg_engine.execution_options(isolation_level="AUTOCOMMIT")
    async with read_engine.connect() as conn:
        session = Session(conn, "test")
        assert await session.get_by(ADMIN, Instance, "uuid", instance["uuid"])
        pid = await session._driver.fetchval("SELECT pg_backend_pid()")
        async with pg_engine.connect() as other:  # the server cuts it (a restart, a failover)
            await other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        # asyncpg reports the loss differently when it has already read the server's
        # goodbye (InterfaceError) than when it meets it in the statement (a PostgresError)
        for _ in range(100 if noticed else 0):
            if session._driver.is_closed():
                break
            await asyncio.sleep(0.02)
        with pytest.raises(sa_exc.DBAPIError) as caught:
            await session.get_by(ADMIN, Instance, "uuid", instance["uuid"])
        # Raised as SQLAlchemy raises a disconnect (the dispatcher answers
        # DBConnectionError), and the pool will not hand this connection out again.
        assert caught.value.connection_invalidated
        assert conn.invalidated
    async with read_engine.connect() as conn:
        assert await Session(conn, "test").get_by(ADMIN, Instance, "uuid", instance["uuid"])


async def test_update_shapes_are_bounded_and_past_the_bound_still_update(
        pg_engine, handlers, monkeypatch):
    db, instance, _ = await _seed(pg_engine)
    monkeypatch.setattr(session_module, "_UPDATES", {})
    monkeypatch.setattr(session_module, "_MAX_UPDATE_SHAPES", 2)
    for values in ({"host": "a"}, {"display_name": "b"}, {"host": "c", "display_name": "d"},
                   {"vm_state": "e"}):
        updated = await db.instance_update(ADMIN, instance["uuid"], values)
        for key, value in values.items():
            assert updated[key] == value
    assert len(session_module._UPDATES) == 2
    stored = await db.instance_get_by_uuid(ADMIN, instance["uuid"])
    assert (stored["host"], stored["display_name"], stored["vm_state"]) == ("c", "d", "e")
    assert stored["updated_at"] is not None
