"""What a stranger on the bus sends: refused, bounded in time, never another's answer.

Raw aio-pika publishes against an in-process conductor on PostgreSQL, as an attacker
would send them; the SQLite variant of the time bound runs in-process.
"""

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import aio_pika
import msgpack
import pytest
from sqlalchemy import text

from conductor.db.engine import make_engine
from conductor.db.migrate import upgrade
from conductor.dispatch import Dispatcher
from conductor.server import Server
from conductor.settings import Settings
from schemas import codec, envelope, exceptions
from schemas.context import RequestContext, get_admin_context
from tests.conftest import _delete_topic
from tests.support import LocalClient

# Exponential backtracking in both PostgreSQL's and Python's regex engines (issue 8).
CATASTROPHIC = r"^(a*)(a*)(a*)(a*)(a*)\5\4\3\2\1\1!$"
VICTIM = "a" * 150 + "!"
USER = RequestContext("hostile-user", "hostile-project")
OWNED = {"project_id": "hostile-project", "user_id": "hostile-user"}


@pytest.fixture
async def start(amqp_url: str, pg_url: str, handlers: Any
                ) -> AsyncIterator[Callable[..., Any]]:
    """Start a conductor on its own topic and engine; returns the topic."""
    cleanup: list[tuple[Server, Any, str]] = []

    async def _start(statement_timeout: float = 30, **options: Any) -> str:
        engine = make_engine(pg_url, pool_size=2, statement_timeout=statement_timeout)
        topic = f"conductor-hostile-{uuid.uuid4().hex[:8]}"
        server = Server(Dispatcher(engine, Settings(pool_size=2, **options)).handle,
                        Settings(amqp_url=amqp_url, topic=topic))
        await server.start()
        cleanup.append((server, engine, topic))
        return topic

    yield _start
    for server, engine, topic in cleanup:
        await server.stop(grace=5)
        await engine.dispose()
        await _delete_topic(amqp_url, topic)


async def _call(amqp_url: str, topic: str, body: bytes, *, timeout: float = 30,
                **props: Any) -> dict[str, Any]:
    """Publish raw bytes as a caller would and return the decoded raw reply."""
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue("amq.rabbitmq.reply-to", ensure=False)
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

        async def on_reply(message: Any) -> None:
            if not future.done():
                future.set_result(message.body)

        await queue.consume(on_reply, no_ack=True)
        await channel.default_exchange.publish(
            aio_pika.Message(body, reply_to="amq.rabbitmq.reply-to",
                             correlation_id=uuid.uuid4().hex, **props), routing_key=topic)
        reply: dict[str, Any] = codec.unpackb(await asyncio.wait_for(future, timeout))
        return reply


def _request(method: str, context: RequestContext | dict[str, Any], *args: Any,
             attempt: int = 1, **kwargs: Any) -> bytes:
    raw = context.to_dict() if isinstance(context, RequestContext) else context
    return envelope.Request(method, list(args), kwargs, raw, attempt=attempt).encode()


def _error(reply: dict[str, Any]) -> tuple[str, str]:
    assert "error" in reply, reply
    return reply["error"]["class"], reply["error"]["message"]


async def _answers_normally(amqp_url: str, topic: str) -> None:
    reply = await _call(amqp_url, topic, _request("service_get_all", get_admin_context()))
    assert "result" in reply, reply


# --- a stored reply answers only the call that stored it --------------------------------

async def test_reused_message_id_never_hands_out_another_callers_reply(amqp_url, start):
    topic = await start()
    mine = RequestContext("u-first", "p-first")
    theirs = RequestContext("u-second", "p-second")
    message_id = uuid.uuid4().hex
    name = f"vm-{message_id[:8]}"
    values = {"display_name": name, "project_id": "p-first", "user_id": "u-first"}
    first = _request("instance_create", mine, values)
    stored = await _call(amqp_url, topic, first, message_id=message_id)
    assert stored["result"]["project_id"] == "p-first"

    # Another caller's write under the same id: as a retry, and as a fresh send.
    for attempt in (2, 1):
        other = _request("instance_create", theirs,
                         {**values, "project_id": "p-second", "user_id": "u-second"},
                         attempt=attempt)
        cls, message = _error(await _call(amqp_url, topic, other, message_id=message_id))
        assert cls == "InvalidRequest" and "different call" in message
    # The same caller with other arguments is a different call too.
    changed = _request("instance_create", mine, {**values, "display_name": name + "-x"},
                       attempt=2)
    assert _error(await _call(amqp_url, topic, changed,
                              message_id=message_id))[0] == "InvalidRequest"

    # Nothing of theirs ran; the genuine retry still gets its stored reply.
    listed = await _call(amqp_url, topic, _request(
        "instance_get_all_by_filters", get_admin_context(), {"display_name": f"^{name}"}))
    assert [row["project_id"] for row in listed["result"]] == ["p-first"]
    retry = await _call(amqp_url, topic, _request("instance_create", mine, values,
                                                  attempt=2), message_id=message_id)
    assert retry == stored


async def test_a_publisher_set_delivery_count_is_not_believed(amqp_url, start):
    topic = await start()
    body = _request("instance_create", USER, {"display_name": "counted"})
    reply = await _call(amqp_url, topic, body, message_id=uuid.uuid4().hex,
                        headers={"x-delivery-count": 1000})
    assert reply["result"]["display_name"] == "counted"


# --- decoding is bounded before anything runs -------------------------------------------

def _nested_tuples(depth: int) -> bytes:
    data = msgpack.packb([])
    for _ in range(depth):
        data = msgpack.packb(msgpack.ExtType(codec.EXT_TUPLE, data))
    return data


def _with_raw_arg(method: str, arg: bytes) -> bytes:
    """A request whose only argument is the given msgpack bytes, spliced in verbatim."""
    head = codec.packb({"v": "1.0", "method": method, "kwargs": {},
                        "context": get_admin_context().to_dict()})
    # fixmap header 0x84 -> 0x85, then "args": [arg]
    assert head[0] == 0x84
    return bytes([0x85]) + head[1:] + msgpack.packb("args") + b"\x91" + arg


@pytest.mark.parametrize(("body", "expected"), [
    (_with_raw_arg("s3_image_get", _nested_tuples(300)), "nested deeper"),
    (_with_raw_arg("s3_image_get", msgpack.packb(
        msgpack.ExtType(codec.EXT_DECIMAL, b"1e1000000"))), "decimal exponent"),
    (_with_raw_arg("s3_image_get", msgpack.packb(
        msgpack.ExtType(codec.EXT_BIGINT, b"9" * 5000))), "big integer"),
    (_request("instance_get_all_by_filters", {**USER.to_dict(), "is_admin": "no"}, {}),
     "'is_admin'"),
    (_request("instance_get_all_by_filters",
              {**USER.to_dict(), "project_id": ["p1", "p2"]}, {}), "'project_id'"),
    (_request("instance_create", USER, {f"k{i}": i for i in range(5000)}),
     "at most 1000 keys"),
    (_request("x" * 100_000, USER), "unknown method"),
    # Seconds of decoding and hundreds of MB before the budget of values per request.
    (_with_raw_arg("s3_image_get", b"\xdd" + (2**20).to_bytes(4, "big") + b"\x90" * 2**20),
     "max_array_len"),
    (_with_raw_arg("s3_image_get", b"\xdc\x02\x58" + (
        b"\xdd" + (4000).to_bytes(4, "big") + b"\xd4\x05\x90" * 4000) * 600),
     "too many"),
], ids=["ext-nesting-300", "decimal-1e1000000", "bigint-5000-digits", "is_admin-string",
        "project_id-list", "values-5000-keys", "huge-method-name", "a-million-arrays",
        "millions-of-sets"])
async def test_hostile_payload_is_refused_and_the_conductor_goes_on(amqp_url, start, body,
                                                                    expected):
    topic = await start()
    cls, message = _error(await _call(amqp_url, topic, body))
    assert cls in ("InvalidRequest", "InvalidInput") and expected in message
    assert len(message) < 1000  # caller data is clipped in what comes back
    await _answers_normally(amqp_url, topic)


# --- no call holds a connection longer than its caller waits ----------------------------

async def _running(pg_engine: Any) -> None:
    """Return once PostgreSQL is running the catastrophic match."""
    # The statement's text is cut at 1 kB there, before its WHERE clause.
    probe = text("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                 "AND query LIKE 'SELECT instances.%' AND pid <> pg_backend_pid()")
    for _ in range(200):
        async with pg_engine.connect() as conn:
            if (await conn.execute(probe)).scalar():
                return
        await asyncio.sleep(0.01)
    raise AssertionError("the slow call never started")


async def _slow_call_meanwhile(amqp_url: str, topic: str, pg_engine: Any
                               ) -> tuple[str, str]:
    """Run the catastrophic filter; other callers must be answered while it runs."""
    created = await _call(amqp_url, topic, _request("instance_create", USER,
                                                    {**OWNED, "display_name": VICTIM}))
    assert "result" in created, created
    slow = asyncio.create_task(_call(amqp_url, topic, _request(
        "instance_get_all_by_filters", USER, {"display_name": CATASTROPHIC})))
    await _running(pg_engine)
    await _answers_normally(amqp_url, topic)
    assert not slow.done()  # answered while the slow call still ran
    error = _error(await slow)
    for _ in range(3):  # both pooled connections are usable again
        await _answers_normally(amqp_url, topic)
    return error


async def test_catastrophic_pattern_is_cancelled_at_max_call_seconds(amqp_url, start,
                                                                    pg_engine):
    topic = await start(max_call_seconds=1)
    cls, message = await _slow_call_meanwhile(amqp_url, topic, pg_engine)
    assert cls == "CallTimeout" and "max_call_seconds" in message


async def test_statement_timeout_bounds_every_connection(amqp_url, start, pg_engine):
    topic = await start(statement_timeout=1, max_call_seconds=30)
    cls, message = await _slow_call_meanwhile(amqp_url, topic, pg_engine)
    assert cls == "CallTimeout" and "statement_timeout" in message


async def test_a_sooner_caller_deadline_cancels_the_call(amqp_url, start):
    topic = await start()
    await _call(amqp_url, topic, _request("instance_create", USER,
                                          {**OWNED, "display_name": VICTIM}))
    body = envelope.Request("instance_get_all_by_filters", [{"display_name": CATASTROPHIC}],
                            {}, USER.to_dict(), timeout=1).encode()
    cls, message = _error(await _call(amqp_url, topic, body))
    assert cls == "CallTimeout" and "caller's deadline" in message
    await _answers_normally(amqp_url, topic)


async def test_sqlite_regexp_is_bounded_in_time(tmp_path, handlers):
    url = f"sqlite+aiosqlite:///{tmp_path / 'c.sqlite'}"
    await asyncio.to_thread(upgrade, url)
    engine = make_engine(url, sqlite_synchronous=False, statement_timeout=1)
    try:
        db = LocalClient(Dispatcher(engine, Settings(max_call_seconds=1)))
        await db.instance_create(USER, {**OWNED, "display_name": VICTIM})
        with pytest.raises(exceptions.CallTimeout):
            await db.instance_get_all_by_filters(USER, {"display_name": CATASTROPHIC})
        found = await db.instance_get_all_by_filters(USER, {"display_name": "^a+!$"})
        assert [row["display_name"] for row in found] == [VICTIM]
    finally:
        await engine.dispose()


# --- what the server learns after a commit goes through one explicit hook --------------

async def test_after_commit_hook_sees_committed_writes_only(tmp_path, handlers):
    from conductor.dispatch import CommitInfo

    url = f"sqlite+aiosqlite:///{tmp_path / 'c.sqlite'}"
    await asyncio.to_thread(upgrade, url)
    engine = make_engine(url, sqlite_synchronous=False)
    seen: list[CommitInfo] = []
    try:
        db = LocalClient(Dispatcher(engine, after_commit=seen.append))
        await db.instance_create(USER, {**OWNED, "display_name": "hooked"})
        await db.instance_get_all_by_filters(USER, {})
        with pytest.raises(exceptions.InvalidInput):
            await db.instance_create(USER, {**OWNED, "vcpus": "many"})
    finally:
        await engine.dispose()
    # instance_create records its instance.created event
    assert [(info.method, info.events) for info in seen] == [("instance_create", 1)]
    assert seen[0].message_id
