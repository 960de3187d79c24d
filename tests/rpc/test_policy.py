"""Callers are who the broker says: the policy applied to the AMQP user_id, end to end.

The client sets user_id to its login (``guest`` here), which RabbitMQ checks; the
conductor applies the policy file's entry for that broker user before any database work.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aio_pika
import pytest

from client import ConductorClient
from conductor.app import Conductor
from conductor.settings import Settings
from schemas import codec, envelope, exceptions
from schemas.context import RequestContext, get_admin_context
from tests.conftest import _delete_topic

POLICY = """
[users.guest]
admin = false
functions = ["read", "service_create"]
projects = ["project1"]
"""


@pytest.fixture
async def guarded(amqp_url: str, pg_engine: Any, handlers: Any, tmp_path: Path
                  ) -> AsyncIterator[tuple[Conductor, Path]]:
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY)
    topic = f"conductor-policy-{uuid.uuid4().hex[:8]}"
    running = Conductor(Settings(amqp_url=amqp_url, topic=topic, policy_file=str(policy)),
                        pg_engine)
    await running.start()
    yield running, policy
    await running.stop(grace=5)
    await _delete_topic(amqp_url, topic)


async def test_a_restricted_broker_user_gets_only_what_its_policy_allows(amqp_url, guarded):
    running, _ = guarded
    user = RequestContext("user1", "project1")
    async with ConductorClient(amqp_url, topic=running.settings.topic, timeout=10) as db:
        # claiming admin is refused, naming the function, and runs nothing
        with pytest.raises(exceptions.NotAuthorized, match="service_create.*admin") as info:
            await db.service_create(get_admin_context(), {"host": "claimed"})
        assert info.value.kwargs["function"] == "service_create"
        # a read for its own project passes the policy and reaches the handler
        with pytest.raises(exceptions.InstanceNotFound):
            await db.instance_get_by_uuid(user, str(uuid.uuid4()))
        # a function outside the policy, and a project outside it
        with pytest.raises(exceptions.NotAuthorized, match="instance_destroy"):
            await db.instance_destroy(user, str(uuid.uuid4()))
        with pytest.raises(exceptions.NotAuthorized, match="project"):
            await db.instance_get_by_uuid(RequestContext("user2", "project2"),
                                          str(uuid.uuid4()))
        # a job queue's call outside the policy is refused with its position
        with pytest.raises(exceptions.NotAuthorized) as queued:
            async with db.job_queue() as q:
                q.instance_destroy(user, str(uuid.uuid4()))
        assert queued.value.batch_index == 0
    refused = running.metrics.refused.labels("policy")._value.get()
    assert refused == 4


async def test_a_message_without_user_id_is_refused_when_a_policy_is_loaded(amqp_url,
                                                                            guarded):
    running, _ = guarded
    request = envelope.Request("service_get_all", [], {},
                               RequestContext("user1", "project1").to_dict())
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        replies = await channel.get_queue("amq.rabbitmq.reply-to", ensure=False)
        received: list[bytes] = []
        got = asyncio.Event()

        async def on_reply(message: Any) -> None:
            received.append(message.body)
            got.set()

        await replies.consume(on_reply, no_ack=True)
        await channel.default_exchange.publish(
            aio_pika.Message(request.encode(), reply_to="amq.rabbitmq.reply-to",
                             message_id=uuid.uuid4().hex),
            routing_key=running.settings.topic)
        await asyncio.wait_for(got.wait(), 10)
    ok, error = envelope.decode_reply(received[0])
    assert not ok and error["class"] == "NotAuthorized"
    assert "user_id" in error["message"]
    assert codec.packb(error)  # the reply is a plain, encodable error


async def test_policy_reload_keeps_serving_and_applies_the_new_rules(amqp_url, guarded):
    running, policy = guarded
    user = RequestContext("user1", "project1")
    async with ConductorClient(amqp_url, topic=running.settings.topic, timeout=10) as db:
        with pytest.raises(exceptions.NotAuthorized):
            await db.instance_destroy(user, str(uuid.uuid4()))
        policy.write_text(POLICY.replace('"service_create"]', '"service_create", '
                                                              '"instance_destroy"]'))
        assert running.dispatcher.policy.reload()  # what SIGHUP runs
        with pytest.raises(exceptions.InstanceNotFound):
            await db.instance_destroy(user, str(uuid.uuid4()))
        policy.write_text("[users.guest\n")  # broken: the rules in force stay
        assert not running.dispatcher.policy.reload()
        with pytest.raises(exceptions.InstanceNotFound):
            await db.instance_destroy(user, str(uuid.uuid4()))
