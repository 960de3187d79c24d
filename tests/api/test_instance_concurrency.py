"""Row locks under real concurrency: RabbitMQ -> conductor -> PostgreSQL only (SQLite runs
one call at a time, so it cannot race)."""

import asyncio

from schemas import exceptions
from schemas.context import RequestContext
from tests.conftest import _wipe

CALLERS = 20


async def _fresh_instance(rpc_client, pg_engine):
    await _wipe(pg_engine)
    user = RequestContext("user1", "project1")
    inst = await rpc_client.instance_create(user, {"project_id": "project1"})
    return user, inst


async def test_test_and_set_lets_exactly_one_caller_win(rpc_client, pg_engine):
    user, inst = await _fresh_instance(rpc_client, pg_engine)
    results = await asyncio.gather(*(
        rpc_client.instance_test_and_set(user, inst["uuid"], "task_state", [None],
                                         f"task-{i}")
        for i in range(CALLERS)), return_exceptions=True)
    winners = [i for i, r in enumerate(results) if r is None]
    losers = [r for r in results if r is not None]
    assert len(winners) == 1, results
    assert len(losers) == CALLERS - 1
    assert all(isinstance(r, exceptions.InstanceInvalidState) for r in losers), losers
    assert {r.kwargs["state"] for r in losers} == {f"task-{winners[0]}"}
    got = await rpc_client.instance_get_by_uuid(user, inst["uuid"])
    assert got["task_state"] == f"task-{winners[0]}"


async def test_update_with_expected_task_state_lets_exactly_one_caller_win(rpc_client,
                                                                           pg_engine):
    user, inst = await _fresh_instance(rpc_client, pg_engine)
    results = await asyncio.gather(*(
        rpc_client.instance_update(user, inst["uuid"], {"expected_task_state": None,
                                                        "task_state": f"task-{i}"})
        for i in range(CALLERS)), return_exceptions=True)
    winners = [r for r in results if isinstance(r, dict)]
    losers = [r for r in results if not isinstance(r, dict)]
    assert len(winners) == 1, results
    assert all(isinstance(r, exceptions.UnexpectedTaskStateError) for r in losers), losers
    assert {r.kwargs["actual"] for r in losers} == {winners[0]["task_state"]}
    got = await rpc_client.instance_get_by_uuid(user, inst["uuid"])
    assert got["task_state"] == winners[0]["task_state"]
