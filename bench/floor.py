"""The floor: a minimal hand-written aio-pika + asyncpg server, no SQLAlchemy.

It consumes its own topic and answers ``instance_get_by_uuid`` and ``service_get`` in the
conductor's wire format (``schemas.codec``; reply ``{"result": ...}``) with ONE SQL round
trip per call: a single SELECT whose correlated subqueries aggregate each relationship as
JSON, converted back to the types the conductor returns (naive datetimes, floats, ...).
Acked after the reply is published, as the conductor does.  Like the conductor's default
path it consumes a quorum topic queue (delivery limit, dead-letter exchange ``<topic>.dlx``),
drops a call whose caller's deadline has passed, and restricts a user (not an admin) to
their own project's instances.  Its ``instance_update`` writes the ``instance.updated``
event into the outbox in the write's transaction, as the conductor does; it publishes
none itself (a conductor on the same database publishes the outbox).  What it skips is
what the benchmark measures the cost of: context objects, signature binding, an explicit
transaction, one statement per relationship, SQLAlchemy result processing.

    python -m bench.floor --db-url postgresql://postgres@127.0.0.1/conductor_bench \
        --amqp-url amqp://guest:guest@127.0.0.1:5672/ --topic bench-floor
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import json
import logging
import signal
import sys
import time
import uuid as uuid_module
from collections.abc import Awaitable, Callable
from typing import Any

import aio_pika
import asyncpg
from aio_pika.abc import AbstractIncomingMessage

from conductor.contract import INSTANCE_EVENT_KEYS
from conductor.settings import DEFAULT_MAX_DELIVERIES
from schemas import codec, exceptions

log = logging.getLogger("bench.floor")

CONTENT_TYPE = "application/msgpack"
TABLES = ("instances", "security_groups", "security_group_rules", "instance_info_caches",
          "instance_metadata", "instance_system_metadata", "instance_types", "services",
          "compute_nodes")

Converter = Callable[[Any], Any]


def _timestamp(value: Any) -> Any:
    return None if value is None else dt.datetime.fromisoformat(value)


def _date(value: Any) -> Any:
    return None if value is None else dt.date.fromisoformat(value)


def _float(value: Any) -> Any:
    return None if value is None else float(value)


_CONVERTERS: dict[str, Converter] = {
    "timestamp without time zone": _timestamp,
    "date": _date,
    "double precision": _float,
    "real": _float,
}


class Schema:
    """Column names and JSON converters per table, read once from information_schema."""

    def __init__(self, columns: dict[str, list[tuple[str, str]]]) -> None:
        self.columns = {t: [name for name, _ in cols] for t, cols in columns.items()}
        self.converters = {t: [(name, _CONVERTERS[kind]) for name, kind in cols
                               if kind in _CONVERTERS] for t, cols in columns.items()}

    @classmethod
    async def load(cls, conn: asyncpg.Connection) -> Schema:
        rows = await conn.fetch(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = ANY($1::text[]) "
            "ORDER BY table_name, ordinal_position", list(TABLES))
        columns: dict[str, list[tuple[str, str]]] = {t: [] for t in TABLES}
        for r in rows:
            columns[r["table_name"]].append((r["column_name"], r["data_type"]))
        missing = [t for t, cols in columns.items() if not cols]
        if missing:
            raise SystemExit(f"floor: tables missing (run the migrations): {missing}")
        return cls(columns)

    def fix(self, table: str, row: dict[str, Any] | None) -> dict[str, Any] | None:
        """A row decoded from JSON, with its values back in the columns' Python types."""
        if row is not None:
            for name, convert in self.converters[table]:
                row[name] = convert(row[name])
        return row

    def json_object(self, table: str, alias: str, extra: str = "") -> str:
        parts = [f"'{c}', {alias}.\"{c}\"" for c in self.columns[table]]
        return f"json_build_object({', '.join(parts)}{extra})"


def instance_sql(schema: Schema, rules: bool = True) -> str:
    """One instance with its joins; ``rules=False``: its groups without their rules, as
    the conductor lists instances."""
    nested = ("(SELECT coalesce(json_agg(r ORDER BY r.id), '[]'::json) "
              "FROM security_group_rules r "
              "WHERE r.parent_group_id = sg.id AND r.deleted = false)")
    group = schema.json_object("security_groups", "sg",
                               f", 'rules', {nested}" if rules else "")
    return f"""
SELECT i.*,
  (SELECT coalesce(json_agg({group} ORDER BY sg.id), '[]'::json)
     FROM security_group_instance_association a
     JOIN security_groups sg ON sg.id = a.security_group_id AND sg.deleted = false
    WHERE a.instance_uuid = i.uuid AND a.deleted = false AND i.deleted = false) AS "_sg",
  (SELECT row_to_json(c) FROM instance_info_caches c
    WHERE c.instance_uuid = i.uuid ORDER BY c.id LIMIT 1) AS "_ic",
  (SELECT coalesce(json_agg(m ORDER BY m.id), '[]'::json) FROM instance_metadata m
    WHERE m.instance_uuid = i.uuid AND m.deleted = false) AS "_md",
  (SELECT coalesce(json_agg(m ORDER BY m.id), '[]'::json) FROM instance_system_metadata m
    WHERE m.instance_uuid = i.uuid AND m.deleted = false) AS "_smd",
  (SELECT row_to_json(t) FROM instance_types t
    WHERE t.id = i.instance_type_id ORDER BY t.id LIMIT 1) AS "_it"
FROM instances i
WHERE i.uuid = $1 AND ($2::text IS NULL OR i.project_id = $2)
  AND ($3::text = 'yes' OR i.deleted = ($3::text = 'only'))
ORDER BY i.id LIMIT 1"""


SERVICE_SQL = """
SELECT s.*,
  (SELECT coalesce(json_agg(c ORDER BY c.id), '[]'::json) FROM compute_nodes c
    WHERE c.service_id = s.id AND c.deleted = false) AS "_cn"
FROM services s
WHERE s.id = $1 AND ($2::text = 'yes' OR s.deleted = ($2::text = 'only'))"""


REPLY_SQL = """
INSERT INTO rpc_replies (message_id, method, digest, user_id, project_id, broker_user, reply,
                         created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"""

EVENT_SQL = """
INSERT INTO event_outbox (event_id, routing_key, body, created_at) VALUES ($1, $2, $3, $4)"""


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Floor:
    def __init__(self, pool: asyncpg.Pool, schema: Schema) -> None:
        self.pool = pool
        self.schema = schema
        self.instance_sql = instance_sql(schema)
        # the conductor's order: sort key created_at desc, then created_at, id (NULLs last)
        listed = instance_sql(schema, rules=False)
        self.list_sql = listed[:listed.index("FROM instances i")] + (
            "FROM instances i WHERE i.project_id = $1 "
            "ORDER BY i.created_at DESC NULLS LAST, i.id DESC NULLS LAST LIMIT $2")
        self.handlers: dict[str, Callable[[dict[str, Any], list[Any]], Awaitable[Any]]] = {
            "instance_get_by_uuid": self.instance_get_by_uuid,
            "service_get": self.service_get,
        }
        # the writes' SQL, by the sorted column names a call sets (checked against the
        # table's columns, never taken from the caller as text)
        self.update_sql: dict[tuple[str, ...], str] = {}

    @staticmethod
    def scope(context: dict[str, Any]) -> str | None:
        """The project a user's call is restricted to (strict isolation); None: an admin."""
        scoped = (not context.get("is_admin") and context.get("user_id")
                  and context.get("project_id"))
        return context["project_id"] if scoped else None

    async def instance_get_by_uuid(self, context: dict[str, Any], args: list[Any]) -> Any:
        (uuid,) = args
        record = await self.pool.fetchrow(self.instance_sql, uuid, self.scope(context),
                                          context.get("read_deleted", "no"))
        if record is None:
            raise exceptions.InstanceNotFound(instance_id=uuid)
        return self.instance_row(record)

    def instance_row(self, record: asyncpg.Record) -> dict[str, Any]:
        row = dict(record)
        fix = self.schema.fix
        groups = json.loads(row.pop("_sg"))
        for group in groups:
            fix("security_groups", group)
            for rule in group.get("rules", ()):
                fix("security_group_rules", rule)
        row["security_groups"] = groups
        info = row.pop("_ic")
        row["info_cache"] = fix("instance_info_caches", json.loads(info)) if info else None
        row["metadata"] = [fix("instance_metadata", m) for m in json.loads(row.pop("_md"))]
        row["system_metadata"] = [fix("instance_system_metadata", m)
                                  for m in json.loads(row.pop("_smd"))]
        flavor = row.pop("_it")
        row["instance_type"] = fix("instance_types", json.loads(flavor)) if flavor else None
        row["name"] = f"instance-{row['id']:08x}"
        return row

    async def instance_update(self, conn: asyncpg.Connection, context: dict[str, Any],
                              args: list[Any]) -> Any:
        """One statement: the UPDATE in a CTE, the joined row selected from it; then the
        instance.updated event into the outbox when a value really changed."""
        uuid, values = args
        names = tuple(sorted(values))
        sql = self.update_sql.get(names)
        if sql is None:
            if not set(names) <= set(self.schema.columns["instances"]) - {"id", "uuid"}:
                raise exceptions.InvalidRequest(reason="the floor updates plain columns only")
            sets = "".join(f', "{n}" = ${k + 5}' for k, n in enumerate(names))
            # the self-join's o is the row before the UPDATE: which values changed
            changed = ", ".join(f'o."{n}" IS DISTINCT FROM n."{n}"' for n in names)
            update = (f"WITH u AS (UPDATE instances n SET updated_at = $4{sets} "
                      "FROM instances o WHERE o.id = n.id AND n.uuid = $1 "
                      "AND n.deleted = false AND ($2::text IS NULL OR n.project_id = $2) "
                      f"RETURNING n.*, ARRAY[{changed}]::boolean[] AS _changed) ")
            sql = self.update_sql[names] = update + self.instance_sql.replace(
                "FROM instances i", "FROM u i", 1)
        now = utcnow()
        record = await conn.fetchrow(sql, uuid, self.scope(context), "no", now,
                                     *(values[n] for n in names))
        if record is None:
            raise exceptions.InstanceNotFound(instance_id=uuid)
        row = self.instance_row(record)
        changes = {n: row[n] for n, c in zip(names, row.pop("_changed"), strict=True) if c}
        if changes:
            event_id = str(uuid_module.uuid4())
            payload = {k: row[k] for k in INSTANCE_EVENT_KEYS}
            await conn.execute(EVENT_SQL, event_id, "instance.updated", codec.packb({
                "event": "instance.updated", "event_id": event_id,
                "resource_type": "instance", "resource_id": row["uuid"],
                "occurred_at": now, "request_id": context.get("request_id"),
                "payload": dict(payload, changes=changes)}), now)
        return row

    async def instance_list(self, context: dict[str, Any], args: list[Any],
                            kwargs: dict[str, Any]) -> Any:
        """The bench's list: one project's instances, newest first, at most ``limit``."""
        filters, limit = args[0], kwargs.get("limit", args[3] if len(args) > 3 else None)
        project = self.scope(context) or filters.get("project_id")
        if set(filters) - {"project_id"} or not isinstance(project, str) or \
                set(kwargs) - {"limit"} or len(args) > 1 and args[1:3] != ["created_at", "desc"]:
            raise exceptions.InvalidRequest(reason="the floor lists by project_id only")
        records = await self.pool.fetch(self.list_sql, project, limit)
        return [self.instance_row(r) for r in records]

    async def service_get(self, context: dict[str, Any], args: list[Any]) -> Any:
        (service_id,) = args
        if not context.get("is_admin"):
            raise exceptions.AdminRequired()
        key = service_id if isinstance(service_id, int) and \
            not isinstance(service_id, bool) else None
        record = None
        if key is not None and -2**31 <= key < 2**31:
            record = await self.pool.fetchrow(SERVICE_SQL, key,
                                              context.get("read_deleted", "no"))
        if record is None:
            raise exceptions.ServiceNotFound(service_id=service_id)
        row = dict(record)
        row["compute_node"] = [self.schema.fix("compute_nodes", n)
                               for n in json.loads(row.pop("_cn"))]
        return row

    async def write(self, request: dict[str, Any], message_id: str | None,
                    broker_user: str | None) -> bytes:
        """A write and its stored reply (exactly once) in one transaction."""
        context = request["context"]
        async with self.pool.acquire() as conn, conn.transaction():
            result = await self.instance_update(conn, context, request["args"])
            reply = codec.packb({"result": result})
            if message_id:
                digest = hashlib.blake2b(codec.packb(
                    [request["method"], request["args"], request.get("kwargs", {})]),
                    digest_size=16).digest()
                await conn.execute(REPLY_SQL, message_id, request["method"], digest,
                                   context.get("user_id"), context.get("project_id"),
                                   broker_user, reply, utcnow())
        return reply

    async def answer(self, body: bytes, message_id: str | None = None,
                     broker_user: str | None = None) -> bytes | None:
        try:
            request = codec.unpackb(body)
            deadline = request.get("deadline")
            if deadline is not None and deadline < time.time():
                return None  # the caller gave up: the conductor drops it unexecuted too
            if request["method"] == "instance_update":
                return await self.write(request, message_id, broker_user)
            if request["method"] == "instance_get_all_by_filters":
                return codec.packb({"result": await self.instance_list(
                    request["context"], request["args"], request.get("kwargs") or {})})
            handler = self.handlers.get(request["method"])
            if handler is None:
                raise exceptions.NotImplementedInConductor(method=request["method"])
            result = await handler(request["context"], request["args"])
            return codec.packb({"result": result})
        except exceptions.NovaException as exc:
            return codec.packb({"error": exc.to_wire()})
        except Exception as exc:
            log.exception("floor call failed")
            return codec.packb({"error": exceptions.RemoteError(
                exc_type=type(exc).__name__, value=str(exc)).to_wire()})


def queue_arguments(topic: str) -> dict[str, Any]:
    """The conductor's default topic queue: quorum, bounded redeliveries, dead-lettered.

    A quorum queue costs more per message than a classic one, so the floor pays it too.
    """
    return {"x-queue-type": "quorum", "x-delivery-limit": DEFAULT_MAX_DELIVERIES,
            "x-dead-letter-exchange": f"{topic}.dlx"}


async def _no_reset(_conn: asyncpg.Connection) -> None:
    return None


async def serve(args: argparse.Namespace) -> int:
    dsn = args.db_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    # reset=: skip asyncpg's reset query on release (a second round trip per call); the
    # floor's statements leave no session state behind.
    pool = await asyncpg.create_pool(dsn, min_size=args.pool_size, max_size=args.pool_size,
                                     reset=_no_reset)
    async with pool.acquire() as conn:
        schema = await Schema.load(conn)
    floor = Floor(pool, schema)
    connection = await aio_pika.connect(args.amqp_url)
    channel = await connection.channel(publisher_confirms=False)
    await channel.set_qos(prefetch_count=args.prefetch)
    queue = await channel.declare_queue(args.topic, durable=True,
                                        arguments=queue_arguments(args.topic))
    # Replies on a connection of their own, as the conductor must publish them (a forged
    # reply-to address makes the broker close the publishing connection).
    replies = await aio_pika.connect(args.amqp_url)
    exchange = (await replies.channel(publisher_confirms=False)).default_exchange

    async def on_message(message: AbstractIncomingMessage) -> None:
        user = message.user_id  # the broker checks it is the connection's user
        reply = await floor.answer(message.body, message.message_id,
                                   user if isinstance(user, str) and user else None)
        if reply is not None and message.reply_to:
            await exchange.publish(
                aio_pika.Message(reply, content_type=CONTENT_TYPE,
                                 correlation_id=message.correlation_id,
                                 delivery_mode=aio_pika.DeliveryMode.NOT_PERSISTENT),
                routing_key=message.reply_to, mandatory=False)
        await message.ack()

    tag = await queue.consume(on_message)
    log.info("floor consuming %r", args.topic)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await queue.cancel(tag)
    await connection.close()
    await replies.close()
    await pool.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.floor", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db-url", required=True)
    parser.add_argument("--amqp-url", default="amqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--topic", required=True)
    parser.add_argument("--prefetch", type=int, default=128)
    parser.add_argument("--pool-size", type=int, default=10)
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s")
    try:
        import uvloop
    except ImportError:
        return asyncio.run(serve(args))
    return uvloop.run(serve(args))


if __name__ == "__main__":
    sys.exit(main())
