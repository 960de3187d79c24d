"""Job queues: writes queued, one message, one transaction, all or nothing."""

import pytest

from schemas import exceptions


async def test_queued_writes_run_in_order_in_one_batch(db, admin):
    async with db.job_queue() as q:
        first = q.service_create(admin, {"host": "a"})
        second = q.service_create(admin, {"host": "b", "report_count": 2})
        assert not first.done() and len(q) == 2
        with pytest.raises(RuntimeError, match="has not run"):
            _ = first.result
    assert first.done() and first.result["host"] == "a"
    assert second.result["report_count"] == 2 and second.result["id"] > first.result["id"]
    assert [s["host"] for s in await db.service_get_all(admin)] == ["a", "b"]


async def test_a_failing_call_undoes_the_whole_batch_and_says_where(db, admin):
    existing = await db.service_create(admin, {"host": "kept"})
    with pytest.raises(exceptions.ServiceNotFound) as info:
        async with db.job_queue() as q:
            q.service_update(admin, existing["id"], {"report_count": 9})
            q.service_create(admin, {"host": "new"})
            q.service_update(admin, 424242, {"report_count": 1})
            q.service_create(admin, {"host": "never"})
    assert info.value.batch_index == 2
    rows = await db.service_get_all(admin)
    assert [(s["host"], s["report_count"]) for s in rows] == [("kept", 0)]


async def test_reads_cannot_be_queued_and_empty_blocks_send_nothing(db, admin, user):
    async with db.job_queue() as q:
        with pytest.raises(TypeError, match="only writes"):
            q.service_get_all(admin)
        with pytest.raises(TypeError):
            q.service_create(admin)  # wrong arguments fail locally, as outside a queue
    assert len(q) == 0
    with pytest.raises(exceptions.AdminRequired) as info:
        async with db.job_queue() as q:
            q.instance_create(user, {"project_id": "project1"})
            q.service_create(user, {"host": "x"})
    assert info.value.batch_index == 1
    assert await db.instance_get_all_by_filters(admin, {}) == []


async def test_bounded(db, admin):
    async with db.job_queue(max_calls=2) as q:
        q.service_create(admin, {"host": "1"})
        q.service_create(admin, {"host": "2"})
        with pytest.raises(ValueError, match="at most 2"):
            q.service_create(admin, {"host": "3"})
    assert len(await db.service_get_all(admin)) == 2


async def test_an_exception_inside_the_block_sends_nothing(db, admin):
    with pytest.raises(KeyError):
        async with db.job_queue() as q:
            q.service_create(admin, {"host": "lost"})
            raise KeyError("caller's own error")
    assert await db.service_get_all(admin) == []
