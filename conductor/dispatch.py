"""From request bytes to reply bytes: decode, check, run one transaction, encode.

Knows nothing of AMQP (``server.py`` does) and nothing of Nova's tables (handlers do).
Every failure becomes an error reply; nothing a caller sends can raise out of
:meth:`Dispatcher.handle`.

Exactly once: a write call's reply is stored under its message id in the transaction that
makes its effect.  A redelivered message (its conductor died before acking) or a caller's
retry (same message id, ``attempt`` > 1) is answered from the store without running again;
a duplicate racing the original loses on the store's primary key and gets the original's
reply.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine

from conductor.db import replies
from conductor.db.base import CONFIG, Config
from conductor.db.engine import is_sqlite
from conductor.db.query import require_admin, require_context
from conductor.db.session import Session
from conductor.handlers import HANDLERS, Handler
from schemas import catalog, envelope, exceptions
from schemas.context import RequestContext

log = logging.getLogger(__name__)

# PostgreSQL SQLSTATEs worth retrying: serialization_failure, deadlock_detected.
_RETRY_SQLSTATES = {"40001", "40P01"}
_CONNECTION_SQLSTATES = {"08000", "08001", "08003", "08004", "08006", "57P01", "57P02",
                         "57P03"}


@dataclass
class Options:
    debug: bool = False
    max_message_size: int = 8 * 1024 * 1024
    clock_skew: float = 5.0
    db_retries: int = 5
    db_retry_delay: float = 0.05
    max_concurrency: int = 20
    max_deliveries: int = 5


@dataclass
class Delivery:
    """What the transport knows about one message."""

    message_id: str | None = None
    redelivered: bool = False
    received: float = 0.0  # time.monotonic() at arrival; 0 = now
    delivery_count: int | None = None  # from the broker, where it counts (quorum queues)


@dataclass
class Outcome:
    reply: bytes | None  # None: nothing to send (the call expired unexecuted)
    method: str
    ok: bool
    error_class: str | None = None
    dead_letter: bool = False
    replayed: bool = False


class _Expired(Exception):
    pass


class Dispatcher:
    def __init__(self, engine: AsyncEngine, options: Options | None = None,
                 handlers: dict[str, Handler] | None = None, config: Config = CONFIG) -> None:
        self.engine = engine
        self.config = config
        self.options = options or Options()
        self.handlers = HANDLERS if handlers is None else handlers
        # SQLite has no row locks: one call at a time keeps the same races closed.
        limit = 1 if is_sqlite(engine) else max(self.options.max_concurrency, 1)
        self._slots = asyncio.Semaphore(limit)
        # Reads run without BEGIN/COMMIT round trips: under READ COMMITTED every statement
        # takes its own snapshot inside a transaction too, so the answers are the same.
        self._read_engine = None if is_sqlite(engine) else \
            engine.execution_options(isolation_level="AUTOCOMMIT")
        self.on_events: Callable[[], None] | None = None

    async def handle(self, body: bytes, delivery: Delivery | str | None = None) -> Outcome:
        if not isinstance(delivery, Delivery):
            delivery = Delivery(message_id=delivery)
        if not delivery.received:
            delivery.received = time.monotonic()
        method = "?"
        try:
            request = envelope.decode_request(body, max_size=self.options.max_message_size)
            method = request.method
            return await self._handle(request, delivery)
        except _Expired:
            return Outcome(None, method, False, "Expired")
        except envelope.EnvelopeError as exc:
            log.warning("refused request %s: %s", delivery.message_id, exc)
            return self._error(exceptions.InvalidRequest(reason=str(exc)), method)
        except exceptions.NovaException as exc:
            return self._error(exc, method)
        except NotImplementedError as exc:
            # Declared-only functions (handlers.DECLARED_ONLY): an answer, not a bug.
            return self._error(self._remote(exc), method)
        except Exception as exc:  # a handler bug must not cost the caller its reply
            log.exception("%s failed", method)
            return self._error(self._remote(exc), method)

    async def _handle(self, request: envelope.Request, delivery: Delivery) -> Outcome:
        work = self._prepare_batch(request) if request.calls is not None else \
            self._prepare(request.method, request.context, request.args, request.kwargs)
        message_id = delivery.message_id if work.is_write else None
        async with self._slots:
            self._check_deadline(request, delivery)
            if message_id and (delivery.redelivered or request.attempt > 1):
                stored = await self._stored(message_id)
                if stored is not None:
                    log.info("%s %s: answered from the reply store (already applied)",
                             request.method, message_id)
                    return Outcome(stored, request.method, True, replayed=True)
            if delivery.redelivered and delivery.message_id and \
                    await self._poisoned(request.method, delivery):
                error = exceptions.PoisonMessage(method=request.method,
                                                 limit=self.options.max_deliveries)
                return Outcome(encode_error(error), request.method, False, "PoisonMessage",
                               dead_letter=True)
            try:
                reply = await self._transaction(request.method, work, message_id,
                                                not work.is_write)
            except sa_exc.IntegrityError as exc:
                # A duplicate of this message that committed first beats us on the reply
                # store's key; any other integrity failure is the handler's DBError.
                stored = await self._stored(message_id) if message_id else None
                if stored is None:
                    raise _db_error(exc) from None
                return Outcome(stored, request.method, True, replayed=True)
        return Outcome(reply, request.method, True)

    def _resolve(self, method: str) -> tuple[catalog.Function, Handler]:
        func = catalog.get(method)
        if func is None or func.kind == "local":
            raise exceptions.InvalidRequest(reason=f"unknown method {method!r}")
        handler = self.handlers.get(method)
        if handler is None:
            raise exceptions.NotImplementedInConductor(method=method)
        return func, handler

    def _prepare(self, method: str, raw_context: dict[str, Any], args: list[Any],
                 kwargs: dict[str, Any]) -> _Call:
        """Resolve, bind and access-check one call before any database work."""
        func, handler = self._resolve(method)
        try:
            context = RequestContext.from_dict(raw_context)
        except (TypeError, ValueError) as exc:
            raise exceptions.InvalidRequest(reason=f"bad context: {exc}") from None
        try:
            bound = func.signature.bind(context, *args, **kwargs)
        except TypeError as exc:
            raise exceptions.InvalidRequest(reason=f"{method}{func.signature}: {exc}") \
                from None
        arguments = bound.arguments
        if arguments.get("session") is not None:
            raise exceptions.InvalidRequest(
                reason=f"{method}: 'session' is in-process only; send None")
        if func.access == "admin":
            require_admin(context)
        elif func.access == "any":
            require_context(context)
        # Nova's in-process ``session`` is dropped; handlers take arguments by name.
        named = {k: v for k, v in arguments.items() if k not in ("context", "session")}
        return _Call(method, handler, context, named, func.is_write, self.config)

    def _prepare_batch(self, request: envelope.Request) -> _Batch:
        assert request.calls is not None
        calls = []
        for index, call in enumerate(request.calls):
            try:
                if call.method == envelope.BATCH_METHOD:
                    raise exceptions.InvalidRequest(reason="a batch cannot hold a batch")
                prepared = self._prepare(call.method, call.context or request.context,
                                         call.args, call.kwargs)
                if not prepared.is_write:
                    raise exceptions.InvalidRequest(
                        reason=f"{call.method} is a read: only writes can be queued")
            except exceptions.NovaException as exc:
                exc.batch_index = index  # type: ignore[attr-defined]
                raise
            calls.append(prepared)
        return _Batch(calls)

    def _check_deadline(self, request: envelope.Request, delivery: Delivery) -> None:
        """Refuse to start a call its caller no longer waits for."""
        late = None
        if request.timeout is not None:
            late = time.monotonic() - (delivery.received + request.timeout)
        if request.deadline is not None:
            skewed = time.time() - (request.deadline + self.options.clock_skew)
            late = skewed if late is None else max(late, skewed)
        if late is not None and late > 0:
            log.info("dropping %s (%s): its caller gave up %.1f s ago", request.method,
                     delivery.message_id, late)
            raise _Expired()

    async def _stored(self, message_id: str) -> bytes | None:
        try:
            async with self.engine.connect() as conn:
                return await replies.stored_reply(conn, message_id)
        except (sa_exc.DBAPIError, OSError) as exc:
            raise _connection_error(exc) from None

    async def _poisoned(self, method: str, delivery: Delivery) -> bool:
        assert delivery.message_id is not None
        count = delivery.delivery_count
        if count is None:
            try:
                count = await replies.count_delivery(self.engine, delivery.message_id, method)
            except (sa_exc.DBAPIError, OSError) as exc:
                raise _connection_error(exc) from None
        if count > self.options.max_deliveries:
            log.error("dead-lettering %s (%s): delivered %d times, the limit is %d",
                      method, delivery.message_id, count, self.options.max_deliveries)
            return True
        return False

    async def _transaction(self, method: str, work: _Call | _Batch,
                           message_id: str | None, read: bool = False) -> bytes:
        attempt = 0
        while True:
            attempt += 1
            try:
                if read and self._read_engine is not None:
                    async with self._read_engine.connect() as conn:
                        return self._encode_result(await work.run(conn), method)
                async with self.engine.begin() as conn:
                    result = await work.run(conn)
                    deferred = getattr(work, "deferred", None)
                    if isinstance(deferred, exceptions.NovaException):
                        reply = encode_error(deferred)  # committed, answered as an error
                    else:
                        reply = self._encode_result(result, method)
                    if message_id:
                        await replies.record_reply(conn, message_id, method, reply)
                if work.events and self.on_events is not None:
                    self.on_events()  # committed: the outbox has something to send
                return reply
            except sa_exc.IntegrityError:
                raise
            except sa_exc.DBAPIError as exc:
                if _sqlstate(exc) in _RETRY_SQLSTATES and attempt <= self.options.db_retries:
                    delay = self.options.db_retry_delay * 2 ** (attempt - 1)
                    log.info("%s: %s, retry %d in %.2f s", method, _sqlstate(exc), attempt,
                             delay)
                    await asyncio.sleep(delay)
                    continue
                raise _db_error(exc) from None
            except (TimeoutError, OSError) as exc:
                raise _connection_error(exc) from None

    def _encode_result(self, result: Any, method: str) -> bytes:
        try:
            return envelope.encode_result(result)
        except (TypeError, ValueError) as exc:
            log.exception("%s returned a value the wire cannot carry", method)
            raise exceptions.RemoteError(exc_type=type(exc).__name__, value=str(exc)) \
                from None

    def _remote(self, exc: BaseException) -> exceptions.RemoteError:
        tb = "".join(traceback.format_exception(exc)) if self.options.debug else None
        return exceptions.RemoteError(exc_type=type(exc).__name__, value=str(exc),
                                      traceback=tb)

    def _error(self, exc: exceptions.NovaException, method: str) -> Outcome:
        return Outcome(encode_error(exc), method, False, type(exc).__name__)


@dataclass
class _Call:
    method: str
    handler: Handler
    context: RequestContext
    kwargs: dict[str, Any]
    is_write: bool
    config: Config
    events: int = 0

    deferred: Exception | None = None

    async def run(self, conn: Any) -> Any:
        session = Session(conn, self.method, self.config)
        result = await self.handler(session, self.context, **self.kwargs)
        self.events = session.events_recorded
        self.deferred = session.deferred_error
        return result


@dataclass
class _Batch:
    """A job queue's calls: in order, in the one transaction, all or nothing."""

    calls: list[_Call]
    is_write: bool = True

    @property
    def events(self) -> int:
        return sum(call.events for call in self.calls)

    async def run(self, conn: Any) -> list[Any]:
        results = []
        for index, call in enumerate(self.calls):
            try:
                results.append(await call.run(conn))
                if call.deferred is not None:
                    raise call.deferred  # in a batch it undoes everything
            except exceptions.NovaException as exc:
                exc.batch_index = index  # type: ignore[attr-defined]
                raise
            except sa_exc.DBAPIError as exc:
                if _sqlstate(exc) in _RETRY_SQLSTATES:
                    raise  # the whole batch is retried
                error = _db_error(exc)
                error.batch_index = index  # type: ignore[attr-defined]
                raise error from None
        return results


def encode_error(exc: exceptions.NovaException) -> bytes:
    wire = exc.to_wire()
    index = getattr(exc, "batch_index", None)
    if index is not None:
        wire["batch_index"] = index
    try:
        return envelope.encode_error(wire)
    except (TypeError, ValueError):
        # kwargs the wire cannot carry: keep class and message, show the rest as text.
        wire["kwargs"] = {k: repr(v) for k, v in wire["kwargs"].items()}
        return envelope.encode_error(wire)


def _sqlstate(exc: sa_exc.DBAPIError) -> str | None:
    orig = getattr(exc, "orig", None)
    return getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)


def _connection_error(exc: BaseException) -> exceptions.NovaException:
    if isinstance(exc, sa_exc.DBAPIError):
        return exceptions.DBConnectionError(reason=str(exc.orig))
    return exceptions.DBConnectionError(reason=f"{type(exc).__name__}: {exc}")


def _db_error(exc: sa_exc.DBAPIError) -> exceptions.NovaException:
    if exc.connection_invalidated or isinstance(exc, sa_exc.InterfaceError) or \
            _sqlstate(exc) in _CONNECTION_SQLSTATES:
        return _connection_error(exc)
    text = str(exc.orig).lower()
    if isinstance(exc, sa_exc.OperationalError) and ("connect" in text or "closed" in text):
        return _connection_error(exc)
    return exceptions.DBError(inner_exception=exc.orig)
