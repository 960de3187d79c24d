"""What the client puts on the wire, seen by a raw consumer on the real broker: the AMQP
user_id the broker vouches for, the request's version and request id."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import pytest
import yarl

from client import BlockingConductorClient, ConductorClient
from schemas import catalog, codec, envelope, exceptions
from schemas.context import RequestContext, get_admin_context

ADMIN = get_admin_context()


class RawConductor:
    """A stand-in conductor: records each request it receives, answers with its version."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.seen: list[tuple[aio_pika.abc.AbstractIncomingMessage, dict[str, Any]]] = []
        self.channel: aio_pika.abc.AbstractChannel | None = None

    async def on_message(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        async with message.process():
            body = codec.unpackb(message.body)
            self.seen.append((message, body))
            assert self.channel is not None and message.reply_to
            result: Any = {"v": body["v"]}
            if body["method"] == envelope.BATCH_METHOD:
                result = [result] * len(body["calls"])
            await self.channel.default_exchange.publish(
                aio_pika.Message(envelope.encode_result(result),
                                 correlation_id=message.correlation_id),
                routing_key=message.reply_to)


@pytest.fixture
async def raw_conductor(amqp_url: str) -> AsyncIterator[RawConductor]:
    raw = RawConductor(f"client-wire-{uuid.uuid4().hex[:8]}")
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        raw.channel = await connection.channel()
        queue = await raw.channel.declare_queue(raw.topic, auto_delete=True)
        await queue.consume(raw.on_message)
        yield raw


async def test_every_message_carries_the_connections_login_as_user_id(amqp_url, raw_conductor):
    login = yarl.URL(amqp_url).user or "guest"
    ctxt = RequestContext("u1", "p1")
    async with ConductorClient(amqp_url, topic=raw_conductor.topic, timeout=10) as db:
        assert await db.instance_get_by_uuid(ctxt, "abc") == {"v": "1.0"}
        async with db.job_queue() as q:
            q.service_create(ADMIN, {"host": "a"})
            q.service_create(ADMIN, {"host": "b"})
        assert await db.call("service_get_all", ADMIN) == {"v": "1.0"}
    assert [m.user_id for m, _ in raw_conductor.seen] == [login] * 3
    (message, body), (_, batch), _ = raw_conductor.seen
    assert message.type == "instance_get_by_uuid" and body["args"] == ["abc"]
    assert body["v"] == catalog.BY_NAME["instance_get_by_uuid"].version
    assert body["context"]["request_id"] == ctxt.request_id
    assert batch["method"] == envelope.BATCH_METHOD and len(batch["calls"]) == 2


async def test_a_context_without_request_id_gets_one_on_the_wire(amqp_url, raw_conductor):
    ctxt = RequestContext("u1", "p1")
    ctxt.request_id = None
    async with ConductorClient(amqp_url, topic=raw_conductor.topic, timeout=10) as db:
        await db.instance_get_by_uuid(ctxt, "a")
        await db.instance_get_by_uuid(ctxt, "b")
    ids = [body["context"]["request_id"] for _, body in raw_conductor.seen]
    assert all(isinstance(i, str) and i.startswith("req-") for i in ids) and ids[0] != ids[1]


def _blocking_calls(amqp_url: str, topic: str, user_id: str | None) -> Any:
    with BlockingConductorClient(amqp_url, topic=topic, timeout=10, user_id=user_id) as db:
        return db.service_get_all(ADMIN)


async def test_the_blocking_client_sets_user_id_too(amqp_url, raw_conductor):
    login = yarl.URL(amqp_url).user or "guest"
    assert await asyncio.to_thread(_blocking_calls, amqp_url, raw_conductor.topic, None) \
        == {"v": "1.0"}
    assert [m.user_id for m, _ in raw_conductor.seen] == [login]


async def test_a_user_id_that_is_not_the_login_fails_clearly(amqp_url, raw_conductor):
    async with ConductorClient(amqp_url, topic=raw_conductor.topic, timeout=10,
                               retries=2, user_id="mallory") as db:
        with pytest.raises(exceptions.UserIdRejected, match="'mallory'") as info:
            await db.service_get_all(ADMIN)
        assert info.value.kwargs["method"] == "service_get_all"
        # The client stays usable: the next call reconnects and is refused the same way.
        with pytest.raises(exceptions.UserIdRejected):
            await db.service_get_all(ADMIN)
    with pytest.raises(exceptions.UserIdRejected, match="'mallory'"):
        await asyncio.to_thread(_blocking_calls, amqp_url, raw_conductor.topic, "mallory")
    assert raw_conductor.seen == []  # the broker dropped every one of them


async def test_a_capped_client_calls_a_conductor_and_refuses_newer_functions(
        amqp_url, conductor, monkeypatch):
    newer = dataclasses.replace(catalog.BY_NAME["service_get"], version="1.1")
    async with ConductorClient(amqp_url, topic=conductor.settings.topic, timeout=10,
                               version_cap="1.0") as db:
        created = await db.service_create(ADMIN, {"host": "capped"})
        assert (await db.service_get(ADMIN, created["id"]))["host"] == "capped"
        monkeypatch.setitem(catalog.BY_NAME, "service_get", newer)
        with pytest.raises(exceptions.VersionCapExceeded, match="service_get needs protocol "
                                                             "version 1.1"):
            await db.service_get(ADMIN, created["id"])
        # Refused before the wire: the connection and the other functions are unaffected.
        assert "capped" in [s["host"] for s in await db.service_get_all(ADMIN)]


async def test_a_newer_client_gets_unsupported_version_from_an_older_conductor(
        amqp_url, conductor, monkeypatch):
    """Rolling upgrade done in the wrong order: a caller whose cap allows a function the
    conductor does not know yet is answered UnsupportedVersion naming both versions."""
    newer = dataclasses.replace(catalog.BY_NAME["service_get_all"], version="1.1")
    monkeypatch.setitem(catalog.BY_NAME, "service_get_all", newer)
    async with ConductorClient(amqp_url, topic=conductor.settings.topic, timeout=10,
                               version_cap="1.1") as db:
        with pytest.raises(exceptions.UnsupportedVersion) as info:
            await db.service_get_all(ADMIN)
        assert (info.value.kwargs["version"], info.value.kwargs["supported"]) == ("1.1", "1.0")
        assert await db.service_get_all_by_topic(ADMIN, "none") == []
