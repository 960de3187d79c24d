"""task_log_* (api-compute.md §3.18), through the client and on SQLite; concurrent
begins through RabbitMQ on PostgreSQL."""

import asyncio
import datetime as dt

import pytest

from schemas import exceptions
from schemas.context import RequestContext, get_admin_context
from tests.conftest import _wipe

BEGIN = dt.datetime(2012, 1, 1)
END = dt.datetime(2012, 2, 1)


async def test_begin_get_end(db, admin):
    task = await db.task_log_begin_task(admin, "audit", BEGIN, END, "h1", task_items=5,
                                        message="started")
    assert (task["state"], task["task_items"], task["errors"], task["message"]) == \
        ("RUNNING", 5, 0, "started")
    # the periods are text: str() of the datetime
    assert (task["period_beginning"], task["period_ending"]) == \
        ("2012-01-01 00:00:00", "2012-02-01 00:00:00")
    assert await db.task_log_get(admin, "audit", BEGIN, END, "h1") == task
    assert await db.task_log_get(admin, "audit", "2012-01-01 00:00:00", END, "h1") == task
    assert await db.task_log_get(admin, "audit", BEGIN, END, "h1", state="DONE") is None
    assert await db.task_log_get(admin, "audit", BEGIN, END, "h2") is None
    assert await db.task_log_get(admin, "audit", "2012-01-01", END, "h1") is None
    with pytest.raises(exceptions.TaskAlreadyRunning) as info:
        await db.task_log_begin_task(admin, "audit", BEGIN, END, "h1", message="again")
    assert info.value.kwargs == {"task_name": "audit", "host": "h1", "code": 500}

    done = await db.task_log_end_task(admin, "audit", BEGIN, END, "h1", 2, message="done")
    assert (done["id"], done["state"], done["errors"], done["message"]) == \
        (task["id"], "DONE", 2, "done")
    assert done["updated_at"] is not None
    # ending again succeeds; an empty message keeps the old one
    again = await db.task_log_end_task(admin, "audit", BEGIN, END, "h1", 3, message="")
    assert (again["state"], again["errors"], again["message"]) == ("DONE", 3, "done")
    assert await db.task_log_get(admin, "audit", BEGIN, END, "h1", "DONE") == again
    # a DONE task still blocks a new begin
    with pytest.raises(exceptions.TaskAlreadyRunning):
        await db.task_log_begin_task(admin, "audit", BEGIN, END, "h1", message="m")
    with pytest.raises(exceptions.TaskNotRunning) as info:
        await db.task_log_end_task(admin, "audit", BEGIN, END, "h2", 0)
    assert info.value.kwargs == {"task_name": "audit", "host": "h2", "code": 500}


async def test_get_all_and_defaults(db, admin):
    micro = dt.datetime(2012, 1, 1, 0, 0, 0, 5)
    aware = dt.datetime(2012, 1, 1, 1, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    a = await db.task_log_begin_task(admin, "audit", aware, END, "h1", message="m")
    assert a["period_beginning"] == "2012-01-01 00:00:00"  # naive UTC text
    assert a["task_items"] == 0  # the default, no task_items given
    b = await db.task_log_begin_task(admin, "audit", BEGIN, END, "h2", task_items=0,
                                     message="m")
    c = await db.task_log_begin_task(admin, "audit", micro, END, "h1", message="m")
    assert c["period_beginning"] == "2012-01-01 00:00:00.000005"
    await db.task_log_begin_task(admin, "other", BEGIN, END, "h1", message="m")
    await db.task_log_end_task(admin, "audit", BEGIN, END, "h2", 0)

    def ids(rows):
        return [r["id"] for r in rows]

    assert ids(await db.task_log_get_all(admin, "audit", BEGIN, END)) == [a["id"], b["id"]]
    assert ids(await db.task_log_get_all(admin, "audit", BEGIN, END, host="h1")) == [a["id"]]
    assert ids(await db.task_log_get_all(admin, "audit", BEGIN, END,
                                         state="DONE")) == [b["id"]]
    assert await db.task_log_get_all(admin, "audit", BEGIN, BEGIN) == []


async def test_failures_and_refusals(db, admin, user):
    # message is NOT NULL: beginning without one fails in the database (Quirk)
    for message in (None, ""):
        with pytest.raises(exceptions.DBError):
            await db.task_log_begin_task(admin, "audit", BEGIN, END, "h1", message=message)
    assert await db.task_log_get_all(admin, "audit", BEGIN, END) == []
    with pytest.raises(exceptions.InvalidInput, match="task_log.task_items"):
        await db.task_log_begin_task(admin, "audit", BEGIN, END, "h1", task_items="many",
                                     message="m")
    for call in (db.task_log_get(user, "a", BEGIN, END, "h"),
                 db.task_log_get_all(user, "a", BEGIN, END),
                 db.task_log_begin_task(user, "a", BEGIN, END, "h", message="m"),
                 db.task_log_end_task(user, "a", BEGIN, END, "h", 0),
                 db.task_log_get(RequestContext(None, None), "a", BEGIN, END, "h")):
        with pytest.raises(exceptions.AdminRequired):
            await call
    with pytest.raises(exceptions.InvalidRequest, match="session"):
        await db.task_log_get(admin, "a", BEGIN, END, "h", session="mine")
    assert await db.task_log_get(get_admin_context("yes"), "a", BEGIN, END, "h") is None


async def test_concurrent_begins_let_exactly_one_caller_win(rpc_client, pg_engine):
    await _wipe(pg_engine)
    admin = get_admin_context()
    results = await asyncio.gather(*(
        rpc_client.task_log_begin_task(admin, "audit", BEGIN, END, "h1", message=f"m{i}")
        for i in range(20)), return_exceptions=True)
    winners = [r for r in results if isinstance(r, dict)]
    losers = [r for r in results if not isinstance(r, dict)]
    assert len(winners) == 1, results
    assert all(isinstance(r, exceptions.TaskAlreadyRunning) for r in losers), losers
    assert len(await rpc_client.task_log_get_all(admin, "audit", BEGIN, END)) == 1
