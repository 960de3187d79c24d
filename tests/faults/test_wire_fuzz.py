"""Thousands of hostile messages against ``conductor serve``: every one is accounted for.

Hypothesis draws the messages (tests/faults/wire_strategies.py); they are published in
batches through the real broker to a conductor process on PostgreSQL.  After each batch:
every message that asked for a reply at a valid address got one (an error reply is an
answer) or was dead-lettered; the process is alive, answers a normal call within two
seconds, and its RSS stays within a bound and stops growing.  Messages the conductor may
rightly leave unanswered (no or a forged reply_to, a TTL, a caller's deadline already past,
undecodable properties) are still served and counted in its log.

FUZZ_SEED=<n> replays a run; FUZZ_BATCHES and FUZZ_BATCH_SIZE change its length.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import random
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import aiormq
import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings
from pamqp import commands, encode

from client import ConductorClient
from schemas.context import get_admin_context
from tests.faults.conftest import Conductors, served_and_dropped
from tests.faults.wire_strategies import (
    LARGE_BODIES,
    MESSAGES,
    NOT_UTF8,
    VALID_REPLY_TO,
    Fuzzed,
    depth,
)

pytestmark = pytest.mark.slow
ADMIN = get_admin_context()
BATCHES = int(os.environ.get("FUZZ_BATCHES", "5"))
BATCH_SIZE = int(os.environ.get("FUZZ_BATCH_SIZE", "500"))
LARGE_PER_BATCH = 3  # requests as large as --max-message-size, built to cost the most
# The conductor alone at rest is about 80 MB.  Its prefetch (128) may hold a few of the
# 8 MiB requests and their decoded values (at most 250,000) at once; 150 MB over the
# baseline leaves room for that and for the heap to settle, not for a leak or an unbounded
# decode (before the budget of values, one 8 MiB request of empty sets took 600 MB).
RSS_HEADROOM_MB = 150
RSS_GROWTH_MB = 40  # the last batch over the second: a leak shows as steady growth


def draw_messages(count: int, run_seed: int) -> list[Fuzzed]:
    """``count`` messages from the strategies; hypothesis only generates here."""
    drawn: list[Fuzzed] = []

    @seed(run_seed)
    @settings(max_examples=count, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(MESSAGES)
    def collect(message: Fuzzed) -> None:
        drawn.append(message)

    collect()
    large: list[bytes] = []

    @seed(run_seed + 1)
    @settings(max_examples=LARGE_PER_BATCH * BATCHES, deadline=None, database=None,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(LARGE_BODIES)
    def collect_large(body: bytes) -> None:
        large.append(body)

    collect_large()
    rng = random.Random(run_seed)
    for body in large:
        drawn.insert(rng.randrange(len(drawn) + 1),
                     Fuzzed(body, {"reply_to": "amq.rabbitmq.reply-to"}, "large"))
    return drawn


class _Stamp(dt.datetime):
    """Encodes as any 64-bit AMQP timestamp, past what datetime can hold."""

    seconds = 0

    def timestamp(self) -> float:
        return self.seconds


def _stamp(seconds: int) -> dt.datetime:
    value = _Stamp(2000, 1, 1, tzinfo=dt.UTC)
    value.seconds = seconds
    return value


_shortstr = encode.METHODS["shortstr"]


def _shortstr_or_not_utf8(value: Any) -> bytes:
    # What a client with another encoder could send: pamqp itself only writes UTF-8.
    return b"\x03\xff\xfe\xfd" if value == NOT_UTF8 else _shortstr(value)


@dataclass
class Sent:
    message: Fuzzed
    correlation_id: str
    batch: int


@dataclass
class Publisher:
    """Publishes with confirms; collects replies on its channel's direct reply-to."""

    url: str
    topic: str
    replies: dict[str, int] = field(default_factory=dict)
    refused: int = 0  # closed a disposable channel: never enqueued
    connection: Any = None
    channel: Any = None
    disposable: Any = None
    disposable_connection: Any = None

    async def open(self) -> None:
        self.connection = await aiormq.connect(self.url)
        self.channel = await self.connection.channel(publisher_confirms=True)
        await self.channel.basic_consume("amq.rabbitmq.reply-to", self._on_reply,
                                         no_ack=True)

    async def close(self) -> None:
        if self.disposable_connection is not None and not self.disposable_connection.is_closed:
            await self.disposable_connection.close()
        await self.connection.close()

    async def _on_reply(self, message: Any) -> None:
        key = message.header.properties.correlation_id or ""
        self.replies[key] = self.replies.get(key, 0) + 1

    async def publish(self, message: Fuzzed, correlation_id: str) -> None:
        p = dict(message.properties)
        if "timestamp" in p:
            p["timestamp"] = _stamp(p["timestamp"])
        delivery_mode = p.pop("delivery_mode", None)
        properties = commands.Basic.Properties(correlation_id=correlation_id, **p)
        properties.delivery_mode = delivery_mode  # pamqp validates 1 or 2; a stranger may not
        if not message.broker_may_refuse:
            # Anything the broker refuses here closes the channel and fails the test:
            # the predicate of what it refuses would be wrong.
            try:
                await self.channel.basic_publish(message.body, routing_key=self.topic,
                                                 properties=properties)
            except aiormq.exceptions.AMQPError as exc:
                raise AssertionError(f"the broker refused {_describe(message)}") from exc
            return
        # The broker closes the channel for these, quoting the value: one that is not
        # UTF-8 then costs aiormq the whole connection (InvalidFrameError).  So a
        # connection of their own, opened again as needed.
        if self.disposable is None or self.disposable.is_closed:
            if self.disposable_connection is None or self.disposable_connection.is_closed:
                self.disposable_connection = await aiormq.connect(self.url)
            self.disposable = await self.disposable_connection.channel(
                publisher_confirms=True)
        try:
            await self.disposable.basic_publish(message.body, routing_key=self.topic,
                                                properties=properties)
        except (aiormq.exceptions.ChannelClosed, aiormq.exceptions.ConnectionClosed,
                aiormq.exceptions.InvalidFrameError):
            self.refused += 1


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


async def _queue_depth(url: str, name: str) -> int:
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(name, passive=True)
        return queue.declaration_result.message_count or 0


async def _dead_lettered(url: str, name: str) -> set[str]:
    """Correlation ids in the dead-letter queue (left there)."""
    connection = await aio_pika.connect(url)
    found: set[str] = set()
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(name, passive=True)
        while (message := await queue.get(fail=False, no_ack=False)) is not None:
            found.add(message.correlation_id or "")
        await channel.close()  # unacked: they go back to the queue
    return found


async def _normal_call_seconds(db: ConductorClient) -> float:
    started = time.monotonic()
    services = await db.service_get_all(ADMIN)
    assert isinstance(services, list)
    return time.monotonic() - started


async def _start_conductor(conductors: Conductors, log_path: str
                           ) -> subprocess.Popen[bytes]:
    # The log goes to a file: thousands of warnings would fill a pipe and block it.
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(conductors.command("--max-call-seconds", "5",
                                                   "--max-deliveries", "3"), stderr=log)
    conductors.procs.append(proc)
    await conductors.wait_consumers(1, proc=proc)
    return proc


async def test_hostile_messages_are_each_answered_set_aside_or_dropped(conductors, tmp_path):
    run_seed = int(os.environ.get("FUZZ_SEED", random.randrange(2**32)))
    messages = draw_messages(BATCHES * BATCH_SIZE, run_seed)
    note = f"FUZZ_SEED={run_seed}"
    log_path = str(tmp_path / "conductor.log")
    proc = await _start_conductor(conductors, log_path)
    url, topic = conductors.amqp_url, conductors.topic
    publisher = Publisher(url, topic)
    await publisher.open()
    encode.METHODS["shortstr"] = _shortstr_or_not_utf8
    recursion_limit = sys.getrecursionlimit()
    sys.setrecursionlimit(50_000)  # pamqp encodes the deepest header tables recursively
    rss: list[float] = []
    sent: list[Sent] = []
    try:
        async with ConductorClient(url, topic=topic, timeout=10) as db:
            await _normal_call_seconds(db)  # warm: the pool, the reply node, the caches
            baseline = _rss_mb(proc.pid)
            per_batch = (len(messages) + BATCHES - 1) // BATCHES
            for batch in range(BATCHES):
                chunk = messages[batch * per_batch:(batch + 1) * per_batch]
                for message in chunk:
                    correlation_id = f"fz-{uuid.uuid4().hex}"
                    await publisher.publish(message, correlation_id)
                    sent.append(Sent(message, correlation_id, batch))
                await _await_batch(publisher, sent, batch, url, topic, note)
                assert proc.poll() is None, f"the conductor died ({note})"
                seconds = await _normal_call_seconds(db)
                assert seconds < 2, f"a normal call took {seconds:.1f} s ({note})"
                rss.append(_rss_mb(proc.pid))
    finally:
        encode.METHODS["shortstr"] = _shortstr
        sys.setrecursionlimit(recursion_limit)
        await publisher.close()
    over = [round(r - baseline) for r in rss]
    assert max(over) < RSS_HEADROOM_MB, f"RSS over baseline by batch: {over} MB ({note})"
    assert rss[-1] - rss[1] < RSS_GROWTH_MB, f"RSS keeps growing: {over} MB ({note})"
    proc.terminate()
    await asyncio.to_thread(proc.wait, 30)
    with open(log_path, encoding="utf-8", errors="replace") as file:
        log = file.read()
    served, dropped = served_and_dropped(log)
    enqueued = len(sent) - publisher.refused
    with_ttl = sum(1 for s in sent if "expiration" in s.message.properties)
    # +2: the warm-up and the normal call after each batch; a TTL may drop a message
    # before any delivery; a redelivered one (a lost channel) counts twice.
    assert served >= enqueued - with_ttl + 1 + BATCHES, (served, enqueued, with_ttl, note)
    # Every forged or made-up reply_to is dropped unexecuted, with a log line.
    forged = sum(1 for s in sent if s.message.properties.get("reply_to") not in
                 (None, VALID_REPLY_TO) and "expiration" not in s.message.properties
                 and not s.message.broker_may_refuse)
    assert dropped >= forged, (dropped, forged, note)
    assert "Traceback" not in log, f"{note}\n{_tracebacks(log)}"
    print(f"{note}: {len(sent)} messages, {served} served, {dropped} dropped, "
          f"{publisher.refused} refused by the broker; RSS over baseline {over} MB")


async def _await_batch(publisher: Publisher, sent: list[Sent], batch: int, url: str,
                       topic: str, note: str) -> None:
    """Every message of ``batch`` that asked for a reply has one, or is dead-lettered."""
    expected = [s for s in sent if s.batch == batch and s.message.reply_expected]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while True:
        missing = [s for s in expected if s.correlation_id not in publisher.replies]
        depth = await _queue_depth(url, topic)
        if (not missing and depth == 0) or loop.time() > deadline:
            break
        await asyncio.sleep(0.2)
    if missing:
        dead = await _dead_lettered(url, f"{topic}.dead")
        missing = [s for s in missing if s.correlation_id not in dead]
    assert not missing, f"{len(missing)} messages neither answered nor dead-lettered " \
        f"({note}):\n" + "\n".join(_describe(s.message) for s in missing[:5])


def _describe(message: Fuzzed) -> str:
    properties = {k: v for k, v in message.properties.items() if k != "headers"}
    headers = {k: f"{type(v).__name__} of depth {depth(v)}: {v!r:.60}"
               for k, v in (message.properties.get("headers") or {}).items()}
    return (f"{message.kind} body of {len(message.body)} bytes {message.body[:100]!r}..., "
            f"properties {properties!r:.500}, headers {headers!r:.800}")


def _tracebacks(log: str) -> str:
    blocks = log.split("Traceback")[1:4]
    return "\n---\n".join(b[:2000] for b in blocks)
