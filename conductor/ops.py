"""Commands for operators: ``conductor status``, ``conductor events tail``, ``conductor
schema export``; and the console script's entry, which explains a client-only install.

Nothing here creates what it looks at: the queues are declared passively, so ``status``
against a topic nobody serves says so instead of creating an empty queue.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import decimal
import json
import logging
import os
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import aio_pika
import aio_pika.exceptions

from conductor import broker
from conductor.logs import redact

EVENTS_EXCHANGE = "conductor.events"  # conductor/db/events.py, which needs SQLAlchemy
COMMANDS = ("schema", "status", "events")
# A module of ours missing is a broken install; anything else missing when the server is
# imported comes with the `server` extra (pyproject.toml), whatever that extra grows to.
_OWN_PACKAGES = {"conductor", "client", "schemas"}


def main(argv: list[str] | None = None) -> int:
    """The ``conductor`` console script: a caller's install has no server dependencies."""
    try:
        from conductor import cli
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] in _OWN_PACKAGES or not exc.name:
            raise
        print(f"conductor: the server's dependencies are not installed ({exc.name} is "
              "missing); this install is the client only. For the conductor itself: "
              "pip install 'conductor[server]'", file=sys.stderr)
        return 2
    return cli.main(argv)


def add_commands(sub: Any, common: Callable[..., None]) -> None:
    """Register the subcommands on ``conductor``'s subparsers; ``common`` adds the
    connection options (``--amqp-url``, ``--topic``, ``--db-url``, ``--log-level``)."""
    schema = sub.add_parser("schema", help="the wire contract")
    schema_sub = schema.add_subparsers(dest="schema_command", required=True)
    export = schema_sub.add_parser("export", help="write the AsyncAPI 3.0 document")
    export.add_argument("--output", "-o", default="-", help="file to write (default stdout)")
    export.add_argument("--log-level", default="WARNING")

    status = sub.add_parser("status", help="queue depth, consumers, dead letters, outbox "
                                           "backlog, schema version, policy")
    common(status)
    status.add_argument("--json", action="store_true", help="one JSON object instead")

    events = sub.add_parser("events", help="lifecycle events")
    events_sub = events.add_subparsers(dest="events_command", required=True)
    tail = events_sub.add_parser("tail", help="print events as they arrive, one JSON line "
                                              "each, until interrupted")
    common(tail, db=False)
    tail.add_argument("pattern", nargs="?", default="#",
                      help="routing-key pattern, e.g. 'database_snapshot.*' (default #)")
    tail.add_argument("--count", type=int, default=0,
                      help="exit after this many events (default: never)")


def run(args: argparse.Namespace) -> int:
    # The schema revision is read through Alembic, which is chatty at INFO.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    if args.command == "schema":
        return _export(args.output)
    try:
        if args.command == "status":
            return asyncio.run(_status(args))
        return asyncio.run(tail(args.amqp_url, args.pattern, count=args.count))
    except KeyboardInterrupt:
        return 0


def _export(output: str) -> int:
    from conductor import contract

    text = contract.export()
    if output == "-":
        sys.stdout.write(text)
    else:
        Path(output).write_text(text, encoding="utf-8")
    return 0


# --- status --------------------------------------------------------------------------


async def queue_counts(amqp_url: str, topic: str) -> dict[str, Any]:
    """Ready messages and consumers of the topic queue and its dead-letter queue
    (``None`` for a queue that does not exist)."""
    found: dict[str, Any] = {}
    connection = await broker.connect_once(amqp_url)
    async with connection:
        for key, name in (("queue", topic), ("dead_letters", f"{topic}.dead")):
            # A passive declare of a missing queue closes the channel: one per queue.
            channel = await connection.channel()
            try:
                queue = await channel.declare_queue(name, passive=True)
            except aio_pika.exceptions.ChannelNotFoundEntity:
                found[key] = None
                continue
            result = queue.declaration_result
            found[key] = {"name": name, "messages": result.message_count or 0,
                          "consumers": result.consumer_count or 0}
            await channel.close()
    return found


async def database_state(db_url: str) -> dict[str, Any]:
    """The outbox backlog and the schema revision against the code's head."""
    from sqlalchemy import func, select

    from conductor.db.engine import make_engine
    from conductor.db.migrate import current_revision, head_revision
    from conductor.db.rpc_tables import EventOutbox

    engine = make_engine(db_url)
    try:
        revision = await current_revision(engine)
        backlog = None
        if revision is not None:
            outbox = EventOutbox.__table__
            async with engine.connect() as conn:
                backlog = await conn.scalar(select(func.count()).select_from(outbox)
                                            .where(outbox.c.sent_at.is_(None)))
    finally:
        await engine.dispose()
    return {"schema": revision, "schema_head": head_revision(), "outbox_backlog": backlog}


def _policy_in_force() -> str | None:
    """The policy file CONDUCTOR_POLICY names, as the conductor would load it."""
    path = os.environ.get("CONDUCTOR_POLICY")
    if not path:
        return None
    from conductor.policy import PolicyError, load

    try:
        return load(path).describe()
    except PolicyError as exc:
        return f"unreadable: {exc}"


async def _status(args: argparse.Namespace) -> int:
    report: dict[str, Any] = {"topic": args.topic, "policy": _policy_in_force()}
    failed = False
    for part, probe in (("broker", lambda: queue_counts(args.amqp_url, args.topic)),
                        ("database", lambda: database_state(args.db_url))):
        try:
            report.update(await probe())
        except Exception as exc:  # an operator's tool reports what it could not reach
            report[f"{part}_error"] = f"{type(exc).__name__}: {redact(str(exc))}"
            failed = True
    if args.json:
        print(json.dumps(report, sort_keys=True))
    else:
        _print_status(report, sys.stdout)
    return 1 if failed else 0


def _print_status(report: dict[str, Any], out: TextIO) -> None:
    def queue_line(label: str, key: str, name: str) -> str:
        if "broker_error" in report:
            return f"{label}: unknown ({report['broker_error']})"
        q = report[key]
        if q is None:
            return f"{label}: no queue {name}"
        return f"{label}: {q['name']}: {q['messages']} ready, {q['consumers']} consumers"

    topic = report["topic"]
    lines = [queue_line("topic queue", "queue", topic),
             queue_line("dead letters", "dead_letters", f"{topic}.dead")]
    if "database_error" in report:
        lines += [f"outbox backlog: unknown ({report['database_error']})",
                  "schema: unknown"]
    else:
        backlog = report["outbox_backlog"]
        lines.append("outbox backlog: " + ("unknown (no schema)" if backlog is None
                                           else f"{backlog} unsent events"))
        current, head = report["schema"], report["schema_head"]
        state = "up to date" if current == head else f"behind {head}: run conductor db sync"
        lines.append(f"schema: {current or 'none'} ({state})")
    lines.append(f"policy: {report['policy'] or 'none'}")
    out.write("\n".join(lines) + "\n")


# --- events tail ---------------------------------------------------------------------


async def tail(amqp_url: str, pattern: str = "#", *, count: int = 0,
               out: TextIO | None = None) -> int:
    """Print each event on ``conductor.events`` matching ``pattern`` as one JSON line."""
    out = out or sys.stdout
    connection = await broker.connect_once(amqp_url)
    async with connection:
        channel = await connection.channel()
        # The same declaration as the conductor's publisher, so tailing before any
        # conductor ran works and changes nothing.
        exchange = await channel.declare_exchange(EVENTS_EXCHANGE, aio_pika.ExchangeType.TOPIC,
                                                  durable=True)
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(exchange, pattern)
        print(f"listening on {EVENTS_EXCHANGE} for {pattern}", file=sys.stderr, flush=True)
        seen = 0
        async with queue.iterator() as messages:
            async for message in messages:
                async with message.process():
                    out.write(event_line(message.routing_key or "", message.body) + "\n")
                    out.flush()
                seen += 1
                if count and seen >= count:
                    break
    return 0


def event_line(routing_key: str, body: bytes) -> str:
    from schemas import codec

    try:
        event = codec.unpackb(body)
    except ValueError as exc:
        event = {"event": routing_key, "undecodable": str(exc)}
    return json.dumps(event, sort_keys=True, default=_json_default)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (dt.datetime, dt.date, dt.time)):
        return obj.isoformat()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj, key=repr)
    if isinstance(obj, bytes):
        return obj.hex()
    if isinstance(obj, (uuid.UUID, decimal.Decimal, dt.timedelta)):
        return str(obj)
    return repr(obj)
