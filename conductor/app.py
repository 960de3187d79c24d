"""One conductor process: engine, schema check, handlers, dispatcher, AMQP server."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass

from conductor.db.base import CONFIG
from conductor.db.engine import DEFAULT_DB_URL, DatabaseUnavailable, make_engine, wait_for_database
from conductor.db.migrate import SchemaBehind, check_schema
from conductor.dispatch import Dispatcher, Options
from conductor.handlers import load_all, signature_mismatches
from conductor.server import DEFAULT_AMQP_URL, DEFAULT_TOPIC, Server, ServerOptions

log = logging.getLogger(__name__)


@dataclass
class AppOptions:
    amqp_url: str = DEFAULT_AMQP_URL
    db_url: str = DEFAULT_DB_URL
    topic: str = DEFAULT_TOPIC
    prefetch: int = 128
    pool_size: int = 20
    max_message_size: int = 8 * 1024 * 1024
    quorum_queues: bool = False
    strict_values: bool = False
    sqlite_synchronous: bool = True
    db_wait: float = 30.0
    reply_retention: float = 3600.0
    max_deliveries: int = 5
    debug: bool = False


def check_handlers() -> None:
    load_all()
    problems = signature_mismatches()
    if problems:
        raise SystemExit("handlers disagree with the catalog:\n  " + "\n  ".join(problems))


async def build(options: AppOptions) -> Server:
    """Everything but the AMQP connection; raises on a database or schema problem."""
    check_handlers()
    CONFIG.strict_values = options.strict_values
    engine = make_engine(options.db_url, sqlite_synchronous=options.sqlite_synchronous,
                         pool_size=options.pool_size)
    await wait_for_database(engine, timeout=options.db_wait)
    await check_schema(engine)
    dispatcher = Dispatcher(engine, Options(
        debug=options.debug, max_message_size=options.max_message_size,
        max_concurrency=options.pool_size))
    return Server(dispatcher, ServerOptions(
        amqp_url=options.amqp_url, topic=options.topic, prefetch=options.prefetch,
        quorum_queues=options.quorum_queues, reply_retention=options.reply_retention))


async def run(options: AppOptions) -> int:
    try:
        server = await build(options)
    except (DatabaseUnavailable, SchemaBehind) as exc:
        print(f"conductor: {exc}", file=sys.stderr)
        return 1
    try:
        await server.serve_forever()
    finally:
        await server.dispatcher.engine.dispose()
    return 0
