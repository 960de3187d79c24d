"""One conductor process: engine, schema check, handlers, dispatcher, AMQP server, outbox.

The parts meet here and nowhere else: the server knows AMQP only, the dispatcher knows
neither AMQP nor the outbox, and the outbox and the reply-store purge are wired to the
database here.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import signal
import sys

from sqlalchemy.ext.asyncio import AsyncEngine

from conductor import broker
from conductor.db import events, replies
from conductor.db.engine import DatabaseUnavailable, make_engine, wait_for_database
from conductor.db.migrate import SchemaBehind, check_schema
from conductor.dispatch import CommitInfo, Dispatcher
from conductor.handlers import load_all, signature_mismatches
from conductor.outbox import OutboxPublisher
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
        self.dispatcher = Dispatcher(engine, settings, after_commit=self._after_commit)
        self.server = Server(self.dispatcher.handle, settings)
        self.outbox: OutboxPublisher | None = None
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
        await self.server.stop(grace)
        if self.outbox is not None:
            await self.outbox.stop()
            await self.outbox.connection.close()
            self.outbox = None

    async def serve_forever(self) -> None:
        await self.start()
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        log.info("signal received: stopping")
        await self.stop()


async def build(settings: Settings) -> Conductor:
    """Everything but the AMQP connections; raises on a database or schema problem."""
    check_handlers()
    engine = make_engine(settings.db_url, sqlite_synchronous=settings.sqlite_synchronous,
                         pool_size=settings.pool_size,
                         statement_timeout=settings.max_call_seconds)
    await wait_for_database(engine, timeout=settings.db_wait)
    await check_schema(engine)
    return Conductor(settings, engine)


async def run(settings: Settings) -> int:
    try:
        conductor = await build(settings)
    except (DatabaseUnavailable, SchemaBehind) as exc:
        print(f"conductor: {exc}", file=sys.stderr)
        return 1
    try:
        await conductor.serve_forever()
    except QueueMismatch as exc:
        print(f"conductor: {exc}", file=sys.stderr)
        return 1
    finally:
        await conductor.engine.dispose()
    return 0
