"""The RPC path itself: errors, bad input, timeouts, routing, concurrency, shutdown."""

import asyncio
import os
import signal
import subprocess
import time
import uuid

import aio_pika
import pytest
from sqlalchemy import text

from client import BlockingConductorClient, ConductorClient
from schemas import codec, exceptions
from schemas.context import RequestContext, get_admin_context
from tests.conftest import _delete_topic
from tests.rpc.conftest import conductor_command


async def _raw_call(amqp_url, topic, body, *, timeout=10, **props):
    """Publish raw bytes as a caller would and wait for the raw reply."""
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        replies = await channel.get_queue("amq.rabbitmq.reply-to", ensure=False)
        future = asyncio.get_running_loop().create_future()

        async def on_reply(message):
            if not future.done():
                future.set_result(message.body)

        await replies.consume(on_reply, no_ack=True)
        await channel.default_exchange.publish(
            aio_pika.Message(body, reply_to="amq.rabbitmq.reply-to",
                             correlation_id=uuid.uuid4().hex, **props),
            routing_key=topic)
        return codec.unpackb(await asyncio.wait_for(future, timeout))


async def test_remote_exception_keeps_class_message_and_kwargs(rpc_client, admin):
    with pytest.raises(exceptions.ServiceNotFound) as info:
        await rpc_client.service_get(admin, 31337)
    assert isinstance(info.value, exceptions.NotFound)
    assert info.value.kwargs == {"service_id": 31337, "code": 404}
    assert "31337" in str(info.value)


async def test_wrong_arguments_fail_locally_before_sending(rpc_client, admin):
    with pytest.raises(TypeError):
        await rpc_client.service_get(admin)
    with pytest.raises(TypeError):
        await rpc_client.service_get(admin, 1, 2)
    with pytest.raises(TypeError):
        await rpc_client.service_get(admin, service_id=1, bogus=2)
    with pytest.raises(TypeError, match="RequestContext"):
        await rpc_client.service_get({"is_admin": True}, 1)


@pytest.mark.parametrize("body, expected", [
    (b"\xc1\xc1 not msgpack", "undecodable"),
    (codec.packb({"v": "1.0", "method": "no_such_method", "args": [], "kwargs": {},
                  "context": {}}), "unknown method"),
    (codec.packb({"v": "1.0", "method": "service_get", "args": [1, 2, 3], "kwargs": {},
                  "context": get_admin_context().to_dict()}), "service_get"),
    (codec.packb({"v": "1.0", "method": "service_get", "args": "x", "kwargs": {},
                  "context": {}}), "'args' must be an array"),
    (codec.packb({"v": "7", "method": "service_get", "args": [1], "kwargs": {},
                  "context": {}}), "unsupported protocol version"),
    (codec.packb({"v": "1.0", "method": "service_get", "args": [1], "kwargs": {},
                  "context": {"read_deleted": "sometimes"}}), "bad context"),
    (codec.packb({"v": "1.0", "method": "constraint", "args": [], "kwargs": {},
                  "context": {}}), "unknown method"),
])
async def test_bad_requests_get_an_error_reply_and_the_conductor_goes_on(
        amqp_url, conductor, rpc_client, admin, body, expected):
    reply = await _raw_call(amqp_url, conductor.settings.topic, body)
    assert reply["error"]["class"] == "InvalidRequest"
    assert expected in reply["error"]["message"]
    assert await rpc_client.service_get_all(admin) is not None


async def test_wrong_typed_argument_is_an_error_reply_not_a_crash(db, admin):
    with pytest.raises(exceptions.InvalidInput):
        await db.service_create(admin, {"host": ["not", "a", "string"]})
    with pytest.raises(exceptions.InvalidInput):
        await db.service_create(admin, "values must be a dict")
    with pytest.raises(exceptions.ServiceNotFound):
        await db.service_get(admin, {"a": 1})
    assert await db.service_get_all(admin) == []


async def test_oversized_request_is_refused_undecoded(amqp_url, make_conductor, admin):
    server = await make_conductor(max_message_size=1024)
    reply = await _raw_call(amqp_url, make_conductor.topic, b"\x00" * 4096)
    assert reply["error"]["class"] == "InvalidRequest"
    assert "exceeds the limit" in reply["error"]["message"]
    async with ConductorClient(amqp_url, topic=make_conductor.topic) as db:
        assert isinstance(await db.service_get_all(admin), list)
    assert server.served == 2


async def test_call_to_a_topic_nobody_consumes_fails_at_once(amqp_url, admin):
    async with ConductorClient(amqp_url, topic=f"nobody-{uuid.uuid4().hex}",
                               timeout=30) as db:
        started = time.monotonic()
        with pytest.raises(exceptions.NoConductor):
            await db.service_get_all(admin)
        assert time.monotonic() - started < 5


async def test_call_outliving_its_timeout_raises_and_expired_call_is_dropped(
        amqp_url, make_conductor, pg_engine, admin):
    await make_conductor(prefetch=1)
    async with ConductorClient(amqp_url, topic=make_conductor.topic, timeout=20) as db:
        service = await db.service_create(admin, {"host": "slow"})
        async with pg_engine.connect() as locker:
            await locker.execute(text("LOCK TABLE services IN ACCESS EXCLUSIVE MODE"))
            blocked = asyncio.ensure_future(
                db.service_update(admin, service["id"], {"report_count": 1}))
            await asyncio.sleep(0.5)
            started = time.monotonic()
            with pytest.raises(exceptions.RPCTimeout):
                await db.options(timeout=1).service_create(admin, {"host": "stale"})
            assert 0.9 < time.monotonic() - started < 3
            await asyncio.sleep(2)
            await locker.rollback()
        assert await blocked is None
        await asyncio.sleep(0.5)
        hosts = [s["host"] for s in await db.service_get_all(admin)]
        assert hosts == ["slow"]


async def test_500_concurrent_calls_each_get_their_own_result(rpc_client, admin):
    created = await asyncio.gather(*[
        rpc_client.service_create(admin, {"host": f"h{i}", "report_count": i})
        for i in range(50)])
    ids = {s["host"]: s["id"] for s in created}
    results = await asyncio.gather(*[
        rpc_client.service_get(admin, ids[f"h{i % 50}"]) for i in range(500)])
    for i, service in enumerate(results):
        assert service["host"] == f"h{i % 50}" and service["report_count"] == i % 50


def _use_blocking_client(amqp_url, topic):
    with BlockingConductorClient(amqp_url, topic=topic) as db:
        admin = get_admin_context()
        service = db.service_create(admin, {"host": "blocking"})
        assert db.service_get(admin, service["id"])["host"] == "blocking"
        with pytest.raises(exceptions.ServiceNotFound):
            db.service_get(admin, 10**6)
        with pytest.raises(TypeError):
            db.service_get(admin)
        with pytest.raises(exceptions.AdminRequired):
            db.service_get_all(RequestContext("u", "p"))
        with db.job_queue() as q:
            handle = q.service_update(admin, service["id"], {"report_count": 3})
        assert handle.result is None
        assert db.service_get(admin, service["id"])["report_count"] == 3


async def test_blocking_client_same_methods(amqp_url, conductor):
    # The in-process conductor runs on this loop, so the blocking caller gets a thread.
    await asyncio.to_thread(_use_blocking_client, amqp_url, conductor.settings.topic)


async def test_cast_sends_without_waiting(rpc_client, admin):
    assert await rpc_client.options(cast=True).service_create(admin, {"host": "cast"}) is None
    for _ in range(50):
        if any(s["host"] == "cast" for s in await rpc_client.service_get_all(admin)):
            break
        await asyncio.sleep(0.05)
    else:
        pytest.fail("the cast was never executed")


async def test_declared_only_function_answers_not_implemented(rpc_client, admin):
    # api-network-quota-storage.md DEFECT 7: NotImplementedError, arriving as RemoteError.
    with pytest.raises(exceptions.RemoteError) as info:
        await rpc_client.volume_get_by_ec2_id(admin, 1)
    assert info.value.exc_type == "NotImplementedError" and info.value.traceback is None


async def test_function_without_a_handler_says_so(pg_engine, admin):
    from conductor.dispatch import Delivery, Dispatcher
    from schemas import envelope

    dispatcher = Dispatcher(pg_engine, handlers={})
    body = envelope.Request("service_get_all", [], {}, admin.to_dict(), timeout=5).encode()
    outcome = await dispatcher.handle(body, Delivery(message_id="m1"))
    ok, error = envelope.decode_reply(outcome.reply)
    assert not ok and error["class"] == "NotImplementedInConductor"
    assert "service_get_all" in error["message"]


async def test_sigterm_lets_in_flight_calls_finish(amqp_url, pg_url, pg_engine, admin):
    topic = f"conductor-test-{uuid.uuid4().hex[:8]}"
    proc = subprocess.Popen(conductor_command(amqp_url, pg_url, topic))
    try:
        async with ConductorClient(amqp_url, topic=topic, timeout=30) as db:
            for _ in range(100):
                try:
                    service = await db.service_create(admin, {"host": "term"})
                    break
                except exceptions.NoConductor:
                    await asyncio.sleep(0.1)
            async with pg_engine.connect() as locker:
                await locker.execute(text("LOCK TABLE services IN ACCESS EXCLUSIVE MODE"))
                calls = [asyncio.ensure_future(
                    db.service_update(admin, service["id"], {"report_count": i}))
                    for i in range(5)]
                await asyncio.sleep(0.5)
                os.kill(proc.pid, signal.SIGTERM)
                await asyncio.sleep(0.5)
                assert proc.poll() is None, "the conductor quit with calls in flight"
                await locker.rollback()
            assert await asyncio.gather(*calls) == [None] * 5
        assert await asyncio.to_thread(proc.wait, 15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        await _delete_topic(amqp_url, topic)
