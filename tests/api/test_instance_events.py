"""instance.* lifecycle events, through the real path: client -> RabbitMQ -> conductor ->
PostgreSQL -> outbox -> the conductor.events exchange -> a queue bound to ``instance.#``.

The exchange is shared by every conductor on the broker, so events are picked out by the
instance's uuid.  Events of one conductor arrive in commit order, so an event that should
not exist shows up as a wrong list, without waiting for something not to happen.
"""

import uuid

import jsonschema
import pytest

from conductor import contract
from schemas import exceptions
from schemas.conditions import constraint, equal_any
from schemas.context import RequestContext
from tests.api.test_database_snapshots import _collect, _listen

OWNER = {"project_id": "project-ev", "user_id": "user-ev"}
_EVENT_SCHEMA = contract.build()["components"]["messages"]["event"]["payload"]


async def _events(queue, instance_uuid, count, *also):
    got = await _collect(queue, {instance_uuid, *also}, count)
    for body in got:
        jsonschema.validate(body, _EVENT_SCHEMA)  # the contract says what arrives
        assert body["resource_type"] == "instance"
    return got


def _payload(instance_uuid, host="node1", vm_state="building", task_state=None, **extra):
    return {"uuid": instance_uuid, "host": host, "vm_state": vm_state,
            "task_state": task_state, **OWNER, **extra}


async def test_create_update_destroy_each_publish_one_event(amqp_url, rpc_client, admin):
    connection, queue = await _listen(amqp_url, "instance.#")
    async with connection:
        inst = await rpc_client.instance_create(admin, {
            **OWNER, "host": "node1", "vm_state": "building", "memory_mb": 512,
            "metadata": {"role": "web"}})
        uid = inst["uuid"]
        # host and task_state are given but do not change: only vm_state is named.
        await rpc_client.instance_update(admin, uid, {"vm_state": "active", "host": "node1",
                                                      "task_state": None})
        same = await rpc_client.instance_update(admin, uid, {"vm_state": "active"})
        assert same["vm_state"] == "active"  # it changed nothing: no event
        original, _ = await rpc_client.instance_update_and_get_original(
            admin, uid, {"metadata": {"role": "db"}, "progress": 40, "host": 7})
        assert original["host"] == "node1"
        await rpc_client.instance_destroy(admin, uid)
        got = await _events(queue, uid, 4)
    assert [e["event"] for e in got] == ["instance.created", "instance.updated",
                                        "instance.updated", "instance.destroyed"]
    assert {e["resource_id"] for e in got} == {uid}
    assert {e["request_id"] for e in got} == {admin.request_id}
    assert len({e["event_id"] for e in got}) == 4
    created, active, moved, destroyed = (e["payload"] for e in got)
    assert created == _payload(uid)  # small: no full row, no relationships
    assert active == _payload(uid, vm_state="active", changes={"vm_state": "active"})
    # Stored values (the integer host became text), metadata as its new dict.
    assert moved == _payload(uid, host="7", vm_state="active", changes={
        "metadata": {"role": "db"}, "progress": 40, "host": "7"})
    assert destroyed == _payload(uid, host="7", vm_state="active")


async def test_a_call_that_fails_or_rolls_back_publishes_nothing(amqp_url, rpc_client,
                                                                 admin):
    missing = str(uuid.uuid4())
    connection, queue = await _listen(amqp_url, "instance.#")
    async with connection:
        uid = (await rpc_client.instance_create(admin, {**OWNER, "host": "node1"}))["uuid"]
        with pytest.raises(exceptions.InstanceNotFound):
            await rpc_client.instance_update(admin, missing, {"vm_state": "active"})
        # The first update ran and recorded its event; the batch's failure undoes both.
        with pytest.raises(exceptions.InstanceNotFound):
            async with rpc_client.job_queue() as q:
                q.instance_update(admin, uid, {"vm_state": "error"})
                q.instance_update(admin, missing, {"vm_state": "error"})
        with pytest.raises(exceptions.ConstraintNotMet):
            await rpc_client.instance_destroy(
                admin, uid, constraint=constraint(vm_state=equal_any("error")))
        with pytest.raises(exceptions.InstanceNotFound):  # another project's instance
            await rpc_client.instance_destroy(RequestContext("user-x", "project-x"), uid)
        await rpc_client.instance_destroy(admin, uid)
        got = await _events(queue, uid, 2, missing)
    assert [(e["event"], e["resource_id"]) for e in got] == [
        ("instance.created", uid), ("instance.destroyed", uid)]
    assert got[1]["payload"]["vm_state"] is None  # the rolled-back update left no trace


async def test_a_replayed_call_publishes_nothing_again(amqp_url, rpc_client, admin):
    connection, queue = await _listen(amqp_url, "instance.#")
    async with connection:
        uid = (await rpc_client.instance_create(admin, OWNER))["uuid"]
        once = rpc_client.options(message_id=uuid.uuid4().hex)
        first = await once.instance_update(admin, uid, {"task_state": "spawning"})
        # The same message id again: answered from the stored reply, not run again.
        assert await once.instance_update(admin, uid, {"task_state": "spawning"}) == first
        await rpc_client.instance_update(admin, uid, {"task_state": None})
        got = await _events(queue, uid, 3)
    assert [(e["event"], e["payload"]["changes"]) for e in got[1:]] == [
        ("instance.updated", {"task_state": "spawning"}),
        ("instance.updated", {"task_state": None})]
