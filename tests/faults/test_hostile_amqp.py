"""AMQP properties and reply addresses a stranger sets cost one message, not a connection.

Each test runs ``conductor serve`` as a process, sends the hostile message through the real
broker beside normal calls, and reads from the conductor's last log line how many
deliveries it served: a message that broke the consuming connection would come back and be
served again.
"""

import asyncio
import base64
import datetime
import sys

from pamqp import encode
from sqlalchemy import select

from client import ConductorClient
from conductor.amqp_decoding import UNDECODABLE
from conductor.db.models import Service
from schemas.context import get_admin_context
from tests.faults.conftest import RawCaller, request, served_and_dropped

ADMIN = get_admin_context()
services = Service.__table__
PREFIX = "amq.rabbitmq.reply-to."
# From issue 8: a node that does not exist and a key that is not 16 bytes.
FORGED = PREFIX + "g2dkAA5yYWJiaXRAZmFrZQAAAAAAAAAAAAA=.AAAA"
# The same node with a key of the right shape: well-formed, so only the broker can refuse
# it, by closing the connection that publishes to it.
FORGED_WELL_FORMED = (PREFIX + "g2dkAA5yYWJiaXRAZmFrZQAAAAAAAAAAAAA=." +
                      base64.b64encode(b"k" * 16).decode())


async def _normal_calls(conductors, tag, n=8):
    async with ConductorClient(conductors.amqp_url, topic=conductors.topic,
                               timeout=10) as db:
        made = await asyncio.gather(*[db.service_create(ADMIN, {"host": f"{tag}-{i}"})
                                      for i in range(n)])
    assert sorted(s["host"] for s in made) == sorted(f"{tag}-{i}" for i in range(n))


async def _warm_up(conductors):
    # One answered call: the conductor has replied to this broker node once.
    async with ConductorClient(conductors.amqp_url, topic=conductors.topic,
                               timeout=10) as db:
        assert await db.service_get_all(ADMIN) == []


async def test_forged_reply_to_costs_one_reply(conductors, pg_engine):
    proc = await conductors.start()
    await _warm_up(conductors)
    async with RawCaller(conductors.amqp_url) as raw:
        await raw.publish(conductors.topic, request("service_create", {"host": "malformed"}),
                          reply_to=FORGED, type="service_create")
        await raw.publish(conductors.topic, request("service_create", {"host": "stale"}),
                          reply_to=FORGED_WELL_FORMED, type="service_create")
        await _normal_calls(conductors, "beside-forged")
        # After the well-formed forgery killed the probing connection: still answered.
        await _normal_calls(conductors, "after-forged")
    log = await conductors.stop(proc)
    # 1 + 2 hostile + 16 normal, each once: the consuming connection never dropped.
    assert served_and_dropped(log) == (19, 1)
    assert "is not a direct reply-to address" in log
    async with pg_engine.connect() as conn:
        hosts = set((await conn.execute(select(services.c.host))).scalars())
    assert "malformed" not in hosts  # refused: nothing ran
    assert "stale" in hosts  # ran once; only its reply was lost


class _FarFuture(datetime.datetime):
    """Encodes as the largest AMQP timestamp, 2**64 - 1 seconds."""

    def timestamp(self) -> float:
        return 2**64 - 1


async def test_unrepresentable_timestamp_is_served_like_any_call(conductors):
    proc = await conductors.start()
    await _warm_up(conductors)
    async with RawCaller(conductors.amqp_url) as raw:
        hostile = await raw.publish(
            conductors.topic, request("service_get_all"), type="service_get_all",
            timestamp=_FarFuture(2000, 1, 1, tzinfo=datetime.UTC))
        await _normal_calls(conductors, "beside-timestamp")
        assert "result" in await raw.reply(hostile, timeout=10)
    log = await conductors.stop(proc)
    assert served_and_dropped(log) == (10, 0)
    assert "InvalidFrameError" not in log


async def test_undecodable_property_costs_one_message(conductors):
    proc = await conductors.start()
    await _warm_up(conductors)
    shortstr = encode.METHODS["shortstr"]

    def not_utf8(value):  # what a client with another encoder could send
        return b"\x03\xff\xfe\xfd" if value == "not-utf8" else shortstr(value)

    async with RawCaller(conductors.amqp_url) as raw:
        encode.METHODS["shortstr"] = not_utf8
        try:
            await raw.publish(conductors.topic, request("service_get_all"),
                              content_type="not-utf8", type="service_get_all")
        finally:
            encode.METHODS["shortstr"] = shortstr
        await _normal_calls(conductors, "beside-undecodable")
    log = await conductors.stop(proc)
    assert served_and_dropped(log) == (10, 1)
    assert "properties cannot be decoded" in log


async def test_header_table_nested_past_the_recursion_limit_costs_one_message(conductors):
    proc = await conductors.start()
    await _warm_up(conductors)
    deep: object = "bottom"
    for _ in range(3000):  # RabbitMQ relays it; pamqp decodes tables recursively
        deep = {"n": deep}
    async with RawCaller(conductors.amqp_url) as raw:
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(50_000)  # pamqp encodes recursively too
        try:
            await raw.publish(conductors.topic, request("service_get_all"),
                              headers={"deep": deep}, type="service_get_all")
        finally:
            sys.setrecursionlimit(limit)
        await _normal_calls(conductors, "beside-deep-table")
    log = await conductors.stop(proc)
    # Served once and dropped: the consuming connection never dropped to redeliver it.
    assert served_and_dropped(log) == (10, 1)
    assert "RecursionError" in log and "Reconnecting" not in log


async def test_a_publishers_own_undecodable_marker_is_not_believed(conductors):
    proc = await conductors.start()
    await _warm_up(conductors)
    async with RawCaller(conductors.amqp_url) as raw:
        marked = await raw.publish(conductors.topic, request("service_get_all"),
                                   headers={UNDECODABLE: "forged"}, type="service_get_all")
        assert "result" in await raw.reply(marked, timeout=10)
    log = await conductors.stop(proc)
    assert served_and_dropped(log) == (2, 0)
