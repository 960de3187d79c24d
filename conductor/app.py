"""One conductor process: engine, schema check, handlers, dispatcher, AMQP server, outbox.

The parts meet here and nowhere else: the server knows AMQP only, the dispatcher knows
neither AMQP nor the outbox, and the outbox and the reply-store purge are wired to the
database here.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gc
import logging
import os
import signal
import sys

import aiormq
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from client.urls import masked
from conductor import broker
from conductor.db import events, replies
from conductor.db.connections import RESERVE
from conductor.db.engine import DatabaseUnavailable, make_engine, wait_for_database
from conductor.db.migrate import SchemaBehind, check_schema
from conductor.dispatch import CommitInfo, Dispatcher
from conductor.handlers import load_all, signature_mismatches
from conductor.logs import redact
from conductor.metrics import HealthServer, Metrics
from conductor.observe import ObservedHandle
from conductor.outbox import OutboxPublisher
from conductor.policy import PolicyError
from conductor.server import QueueMismatch, Server
from conductor.settings import Settings

log = logging.getLogger(__name__)


def check_handlers() -> None:
    load_all()
    problems = signature_mismatches()
    if problems:
        raise SystemExit("handlers disagree with the catalog:\n  " + "\n  ".join(problems))


class Conductor:
    """The running parts of one process, started and stopped together."""

    def __init__(self, settings: Settings, engine: AsyncEngine) -> None:
        self.settings = settings
        self.engine = engine
        # after_commit: the one place the outbox learns of committed events.
        self.dispatcher = Dispatcher(engine, settings, after_commit=self._after_commit,
                                     keep_connections=True)
        self.metrics = Metrics()
        self.server = Server(ObservedHandle(self.dispatcher.handle, self.metrics,
                                            settings.slow_call_ms), settings)
        self.outbox: OutboxPublisher | None = None
        self.health: HealthServer | None = None
        self._purger: asyncio.Task[None] | None = None

    def _after_commit(self, info: CommitInfo) -> None:
        """A write committed: publish what it recorded in the outbox now, not at the next
        periodic pass.  Must not block: it runs on the call's path."""
        if self.outbox is not None and info.events:
            self.outbox.kick()

    async def start(self) -> None:
        connection = await broker.connect(
            self.settings.amqp_url, f"conductor:{self.settings.topic}:{os.getpid()}:events")
        self.outbox = OutboxPublisher(self.engine, connection)
        try:
            await self.server.start()
        except BaseException:
            await connection.close()
            raise
        await self.outbox.start()
        self._purger = asyncio.create_task(self._purge_replies())
        if self.settings.policy_file is None:
            log.warning("no --policy file: every broker user may call every function and "
                        "send admin contexts")
        else:
            log.info("policy in force: %s", self.dispatcher.policy.describe())
        if self.settings.metrics_port is not None:
            self.health = HealthServer(self.metrics, self._live,
                                       [self._broker_ready, self._database_ready],
                                       before_scrape=self._refresh_gauges)
            self.metrics_port = await self.health.start(self.settings.metrics_host,
                                                        self.settings.metrics_port)

    # -- health and the gauges a scrape reads --------------------------------------------

    async def _live(self) -> str | None:
        return None if self.server.consuming else "not consuming the topic queue"

    async def _broker_ready(self) -> str | None:
        if await self.server.queue_depth(self.settings.topic) is None:
            return f"the topic queue {self.settings.topic!r} is missing"
        return None

    async def _database_ready(self) -> str | None:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception as exc:
            return f"database: {type(exc).__name__}"
        return None

    async def _refresh_gauges(self) -> None:
        pool = self.engine.sync_engine.pool
        checked_out = getattr(pool, "checkedout", None)
        if checked_out is not None:
            self.metrics.pool_in_use.set(checked_out())
        self.metrics.pool_waiting.set(self.dispatcher.waiting)
        self.metrics.outbox_backlog.set(await events.backlog(self.engine))
        depth = await self.server.queue_depth(self.settings.dead_letter_queue)
        self.metrics.dead_letter_depth.set(depth or 0)

    async def _purge_replies(self) -> None:
        retention = dt.timedelta(seconds=self.settings.reply_retention)
        while True:
            await asyncio.sleep(self.settings.purge_interval)
            try:
                gone = await replies.purge(self.engine, retention)
                gone += await events.purge_sent(self.engine, retention)
                if gone:
                    log.info("purged %d stored replies and sent events older than %s",
                             gone, retention)
            except Exception as exc:
                log.warning("purging stored replies failed: %s", exc)

    async def stop(self, grace: float = 30.0) -> None:
        if self._purger is not None:
            self._purger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._purger
            self._purger = None
        if self.health is not None:
            await self.health.stop()
            self.health = None
        await self.server.stop(grace)
        await self.dispatcher.close()
        if self.outbox is not None:
            await self.outbox.stop()
            await self.outbox.connection.close()
            self.outbox = None

    async def serve_forever(self) -> None:
        await self.start()
        # What start-up built (models, catalog, SQLAlchemy's and aio-pika's own: 125,000
        # objects) lives as long as the process.  Frozen, a full collection no longer
        # walks it: measured under service_get at c=64, one took about 42 ms, some 13 µs
        # per call.
        gc.freeze()
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        with contextlib.suppress(NotImplementedError, RuntimeError):
            # A new policy without dropping a call: calls read the policy once each.
            loop.add_signal_handler(signal.SIGHUP, self.dispatcher.policy.reload)
        await stop.wait()
        log.info("signal received: stopping")
        await self.stop()


async def build(settings: Settings) -> Conductor:
    """Everything but the AMQP connections; raises on a database or schema problem."""
    check_handlers()
    engine = make_engine(settings.db_url, sqlite_synchronous=settings.sqlite_synchronous,
                         pool_size=settings.pool_size + RESERVE,
                         statement_timeout=settings.max_call_seconds)
    await wait_for_database(engine, timeout=settings.db_wait)
    await check_schema(engine)
    return Conductor(settings, engine)


async def run(settings: Settings) -> int:
    try:
        conductor = await build(settings)
    except (DatabaseUnavailable, SchemaBehind, PolicyError) as exc:
        print(f"conductor: {redact(str(exc))}", file=sys.stderr)
        return 1
    try:
        await conductor.serve_forever()
    except QueueMismatch as exc:
        print(f"conductor: {exc}", file=sys.stderr)
        return 1
    except (aiormq.exceptions.AMQPError, OSError) as exc:
        # Said in one line, the password masked: a refused login or certificate at
        # start-up is an operator's error, not a crash to show a traceback for.
        print(f"conductor: the broker at {masked(settings.amqp_url)}: "
              f"{type(exc).__name__}: {redact(str(exc))}", file=sys.stderr)
        return 1
    finally:
        await conductor.engine.dispose()
    return 0
