"""Connections kept checked out between calls (conductor.db.connections) on PostgreSQL.

A conductor process keeps them; what must hold is what a pooled connection gave: the
pool is never exhausted for what runs beside the calls, a connection the server cut or a
call left in doubt is not handed to the next call, an idle one goes back to the pool,
and stopping gives every one back.
"""

import asyncio

import pytest
from sqlalchemy import event, text

from conductor.db import connections as connections_module
from conductor.db.connections import RESERVE
from conductor.db.engine import make_engine
from conductor.dispatch import Dispatcher
from conductor.settings import Settings
from schemas import exceptions
from schemas.context import RequestContext, get_admin_context
from tests.conftest import _wipe
from tests.support import LocalClient

ADMIN = get_admin_context()
POOL = RESERVE + 3  # three kept at most
CATASTROPHIC = r"^(a*)(a*)(a*)(a*)(a*)\5\4\3\2\1\1!$"  # seconds of backtracking per row
USER = RequestContext("kept-user", "kept-project")


@pytest.fixture
async def kept(pg_url, handlers):
    engine = make_engine(pg_url, pool_size=POOL)
    await _wipe(engine)
    dispatcher = Dispatcher(engine, Settings(max_call_seconds=1), keep_connections=True)
    yield engine, dispatcher, LocalClient(dispatcher)
    await dispatcher.close()
    await engine.dispose()


def _checked_out(engine) -> int:
    return engine.sync_engine.pool.checkedout()


def _server_pids(dispatcher, *, reads: bool | None = None) -> list[int]:
    """The server process ids of the idle kept connections (of reads, of writes, of all)."""
    kinds = (True, False) if reads is None else (reads,)
    return [conn.sync_connection.connection.driver_connection.get_server_pid()
            for kind in kinds for conn, _, _ in dispatcher.connections._idle[kind]]


async def test_concurrent_reads_and_writes_stay_within_the_pool_and_leave_its_reserve(kept):
    engine, dispatcher, db = kept
    service = await db.service_create(ADMIN, {"host": "h", "topic": "compute"})

    async def one(i: int) -> None:
        if i % 3:
            assert (await db.service_get(ADMIN, service["id"]))["host"] == "h"
        else:
            await db.service_update(ADMIN, service["id"], {"report_count": i})

    await asyncio.gather(*(one(i) for i in range(60)))
    assert dispatcher.connections.held == _checked_out(engine) <= POOL - RESERVE
    assert dispatcher.connections.held >= 1  # kept, not given back after each call
    # What runs beside the calls (outbox, purge, readiness) still gets connections now.
    async def beside() -> None:
        async with engine.begin() as conn:
            await conn.execute(text("SELECT 1"))
    await asyncio.wait_for(asyncio.gather(*(beside() for _ in range(RESERVE))), 5)


async def test_a_connection_the_server_cut_is_not_handed_out_again(kept, pg_engine):
    engine, dispatcher, db = kept
    service = await db.service_create(ADMIN, {"host": "h", "topic": "compute"})
    await db.service_get(ADMIN, service["id"])
    pids = _server_pids(dispatcher)
    assert len(pids) == 2  # a write's and a read's
    async with pg_engine.connect() as other:  # a restart, a failover, an operator
        for pid in pids:
            await other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    await asyncio.sleep(0.2)
    for _ in range(2):  # the first of each kind may meet its cut connection
        try:
            await db.service_get(ADMIN, service["id"])
        except exceptions.DBConnectionError:
            pass
        try:
            await db.service_update(ADMIN, service["id"], {"report_count": 1})
        except exceptions.DBConnectionError:
            pass
    assert (await db.service_get(ADMIN, service["id"]))["report_count"] == 1
    await db.service_update(ADMIN, service["id"], {"report_count": 2})
    assert not set(pids) & set(_server_pids(dispatcher))


async def test_a_cancelled_call_does_not_leave_its_connection_for_the_next(kept):
    engine, dispatcher, db = kept
    await db.instance_create(USER, {"project_id": "kept-project", "user_id": "kept-user",
                                    "display_name": "a" * 150 + "!"})
    assert _server_pids(dispatcher, reads=True) == []  # only the write's is kept
    with pytest.raises(exceptions.CallTimeout):
        await db.instance_get_all_by_filters(USER, {"display_name": CATASTROPHIC})
    # The cancelled read's connection went back to the pool, not to the next call.
    assert _server_pids(dispatcher, reads=True) == []
    assert dispatcher.connections.held == _checked_out(engine) == 1
    found = await db.instance_get_all_by_filters(USER, {"display_name": "^a+!$"})
    assert len(found) == 1
    assert len(_server_pids(dispatcher, reads=True)) == 1


async def test_an_idle_connection_goes_back_to_the_pool(kept, monkeypatch):
    engine, dispatcher, db = kept
    service = await db.service_create(ADMIN, {"host": "h", "topic": "compute"})
    await db.service_get(ADMIN, service["id"])
    checkouts = []
    event.listen(engine.sync_engine, "checkout", lambda *_: checkouts.append(1))
    await db.service_get(ADMIN, service["id"])
    assert checkouts == []  # kept: no checkout
    monkeypatch.setattr(connections_module, "IDLE_PING_SECONDS", 0.05)
    await asyncio.sleep(0.1)
    await db.service_get(ADMIN, service["id"])
    # The idle connection went back to the pool and was checked out anew (the checkout
    # is where the engine pings a connection idle for a second); no more held than before.
    assert checkouts == [1]
    assert dispatcher.connections.held == _checked_out(engine) == 2  # the write's, a read's


async def test_close_gives_every_connection_back(kept):
    engine, dispatcher, db = kept
    service = await db.service_create(ADMIN, {"host": "h", "topic": "compute"})
    await asyncio.gather(*(db.service_get(ADMIN, service["id"]) for _ in range(10)))
    assert _checked_out(engine) >= 1
    await dispatcher.close()
    assert _checked_out(engine) == 0 and dispatcher.connections.held == 0
