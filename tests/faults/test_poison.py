"""Poison is counted by the broker: the topic queue's delivery limit and dead-letter target."""

import asyncio
import subprocess

import aio_pika
import pytest
from sqlalchemy import func, select, text

from client import ConductorClient
from conductor.db.models import Service
from schemas.context import get_admin_context
from tests.faults.conftest import RawCaller, request

ADMIN = get_admin_context()
services = Service.__table__


async def _queue_depth(amqp_url, name):
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(name, passive=True)
        return queue.declaration_result.message_count


async def _wait_for_messages(amqp_url, name, count=1, timeout=30):
    # Dead-lettering happens in the queue's own process, a moment after the return.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while await _queue_depth(amqp_url, name) < count:
        assert loop.time() < deadline, f"fewer than {count} messages reached {name}"
        await asyncio.sleep(0.05)


async def _drain(amqp_url, name):
    connection = await aio_pika.connect(amqp_url)
    got = []
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(name, passive=True)
        while (message := await queue.get(fail=False, timeout=5)) is not None:
            got.append(message)
            await message.ack()
    return got


async def _hosts(engine, prefix):
    async with engine.connect() as conn:
        rows = await conn.execute(select(services.c.host, func.count())
                                  .where(services.c.host.like(f"{prefix}%"))
                                  .group_by(services.c.host))
        return dict(rows.all())


async def test_message_crashing_every_conductor_is_dead_lettered_and_its_neighbours_answered(
        conductors, pg_engine):
    limit = 3
    args = ("--max-deliveries", str(limit))
    proc = await conductors.start(*args, crash_on="service_get_all", crash_at="arrival")
    async with ConductorClient(conductors.amqp_url, topic=conductors.topic,
                               timeout=120) as db, RawCaller(conductors.amqp_url) as raw:
        # A first answered call: the conductor holds --prefetch calls from now on.
        await db.service_create(ADMIN, {"host": "before"})
        await raw.publish(conductors.topic, request("service_get_all"), reply=False,
                          type="service_get_all")
        innocent = asyncio.gather(*[db.service_create(ADMIN, {"host": f"beside-{i}"})
                                    for i in range(8)])
        crashes = 0
        loop = asyncio.get_running_loop()
        while True:  # a supervisor: restart the conductor whenever it dies
            assert await asyncio.to_thread(proc.wait, 60) == 137
            crashes += 1
            assert crashes <= limit + 1, "the broker never set the message aside"
            proc = await conductors.start(*args, crash_on="service_get_all",
                                          crash_at="arrival", wait=False)
            deadline = loop.time() + 60
            while proc.poll() is None and loop.time() < deadline:
                if await _queue_depth(conductors.amqp_url, conductors.topic + ".dead"):
                    break
                await asyncio.sleep(0.1)
            if proc.poll() is None:
                break
        made = await asyncio.wait_for(innocent, 60)
    assert crashes == limit + 1  # the first delivery and `limit` redeliveries
    assert sorted(s["host"] for s in made) == sorted(f"beside-{i}" for i in range(8))
    assert await _hosts(pg_engine, "beside-") == {f"beside-{i}": 1 for i in range(8)}
    dead = await _drain(conductors.amqp_url, conductors.topic + ".dead")
    assert [m.type for m in dead] == ["service_get_all"]
    death = dead[0].headers["x-death"][0]
    assert dead[0].headers["x-first-death-reason"] == "delivery_limit"
    assert (death["reason"], death["queue"], death["count"]) == \
        ("delivery_limit", conductors.topic, 1)


async def test_expired_calls_never_reach_the_dead_letter_queue(conductors):
    proc = await conductors.start("--max-deliveries", "1")
    await conductors.stop(proc)  # the queues stay, with their arguments
    async with RawCaller(conductors.amqp_url) as raw:
        await raw.publish(conductors.topic, request("service_get_all"), expiration=0.2,
                          type="expired")
        await raw.publish(conductors.topic, request("service_get_all"), type="returned")
        await asyncio.sleep(0.5)  # the first is past its expiration: dropped at the head
    connection = await aio_pika.connect(conductors.amqp_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(conductors.topic, passive=True)
        for _ in range(2):  # returned twice: past a limit of 1
            message = await queue.get(timeout=5)
            assert message.type == "returned"
            await message.nack(requeue=True)
        assert await queue.get(fail=False) is None
    # Both were dead-lettered in this order; only the second may be routed to .dead.
    await _wait_for_messages(conductors.amqp_url, conductors.topic + ".dead")
    dead = await _drain(conductors.amqp_url, conductors.topic + ".dead")
    assert [m.type for m in dead] == ["returned"]


@pytest.mark.parametrize("queue_type", ["quorum", "classic"])
async def test_publisher_set_delivery_count_changes_nothing(conductors, pg_engine,
                                                            queue_type):
    args = ("--classic-queue",) if queue_type == "classic" else ()
    proc = await conductors.start(*args)
    async with RawCaller(conductors.amqp_url) as raw:
        async with pg_engine.connect() as locker:
            await locker.execute(text("LOCK TABLE services IN ACCESS EXCLUSIVE MODE"))
            call = await raw.publish(conductors.topic, request("service_get_all"),
                                     type="service_get_all",
                                     headers={"x-delivery-count": 1000})
            await asyncio.sleep(0.5)  # held by the conductor, waiting for the lock
            proc.kill()  # redelivered, with the publisher's header still on it
            await asyncio.to_thread(proc.wait, 30)
            await locker.rollback()
        await conductors.start(*args)
        assert await raw.reply(call) == {"result": []}


async def test_refuses_to_start_on_a_classic_queue_of_the_same_name(conductors):
    connection = await aio_pika.connect(conductors.amqp_url)
    async with connection:
        channel = await connection.channel()
        await channel.declare_queue(conductors.topic, durable=True)
        await channel.default_exchange.publish(aio_pika.Message(b"waiting"),
                                               routing_key=conductors.topic)
    proc = await conductors.start(wait=False)
    _, err = await asyncio.to_thread(proc.communicate, None, 60)
    assert proc.returncode == 1
    message = err.decode()
    assert f"rabbitmqctl delete_queue {conductors.topic}" in message
    assert "--classic-queue" in message
    assert "Traceback" not in message
    assert await _queue_depth(conductors.amqp_url, conductors.topic) == 1  # untouched
    # Opting out serves the old queue as it is.
    await conductors.start("--classic-queue")


async def test_topic_and_dead_letter_queues_are_quorum_by_default(conductors):
    await conductors.start()
    async with ConductorClient(conductors.amqp_url, topic=conductors.topic, timeout=30) as db:
        assert (await db.service_create(ADMIN, {"host": "q"}))["host"] == "q"
    listing = await asyncio.to_thread(
        subprocess.run, ["rabbitmqctl", "list_queues", "name", "type", "arguments", "-q",
                         "--no-table-headers"],
        capture_output=True, text=True, timeout=60)
    rows = {line.split("\t")[0]: line.split("\t")[1:] for line in listing.stdout.splitlines()
            if "\t" in line}
    assert rows[conductors.topic][0] == "quorum"
    assert "x-delivery-limit" in rows[conductors.topic][1]
    assert f"{conductors.topic}.dlx" in rows[conductors.topic][1]
    assert rows[conductors.topic + ".dead"][0] == "quorum"
