"""From request bytes to reply bytes: decode, check, run one transaction, encode.

Knows nothing of AMQP (``server.py`` does) and nothing of Nova's tables (handlers do).
Every failure becomes an error reply; nothing a caller sends can raise out of
:meth:`Dispatcher.handle`.

Exactly once: a write call's reply is stored under its message id in the transaction that
makes its effect, keyed to the call (method, digest of the arguments, caller).  A
redelivered message (its conductor died before acking) or a caller's retry (same message
id, ``attempt`` > 1) is answered from the store without running again; a duplicate racing
the original loses on the store's primary key and gets the original's reply.  A
*different* call reusing a stored message id is refused with InvalidRequest and runs
nothing.  Poison messages are counted by the broker (a quorum queue's delivery limit),
not here.

Bounded: a call runs at most ``max_call_seconds`` or until its caller's deadline,
whichever comes first, then is cancelled on the server side (asyncpg cancels the running
query and the connection goes back to the pool) and answered with CallTimeout.
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
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from conductor import logs
from conductor.db import replies
from conductor.db.base import Config
from conductor.db.connections import Connections
from conductor.db.engine import is_sqlite, regexp_budget
from conductor.db.query import require_admin, require_context
from conductor.db.session import Session
from conductor.handlers import HANDLERS, Handler
from conductor.policy import PolicyHolder
from conductor.settings import Settings
from schemas import catalog, envelope, exceptions
from schemas.context import RequestContext

log = logging.getLogger(__name__)

# PostgreSQL SQLSTATEs worth retrying: serialization_failure, deadlock_detected.
_RETRY_SQLSTATES = {"40001", "40P01"}
_CONNECTION_SQLSTATES = {"08000", "08001", "08003", "08004", "08006", "57P01", "57P02",
                         "57P03"}
_QUERY_CANCELED = "57014"  # statement_timeout fired
_CLIP = 200  # characters of caller data in a log line or an error message


@dataclass
class Delivery:
    """What the transport knows about one message."""

    message_id: str | None = None
    redelivered: bool = False
    received: float = 0.0  # time.monotonic() at arrival; 0 = now
    broker_user: str | None = None  # the AMQP user the broker vouches for, once known


@dataclass
class Outcome:
    """One message's result: the reply, and what metrics read."""

    reply: bytes | None  # None: nothing to send (the call expired unexecuted)
    method: str  # a catalog name, or "?" for a request that named none
    error_class: str | None = None  # None: answered with a result
    replayed: bool = False  # answered from the reply store
    expired: bool = False  # dropped unexecuted: its caller had given up
    refused: str | None = None  # "policy": the broker user may not make this call


@dataclass(frozen=True)
class CommitInfo:
    """What a committed write recorded, for the ``after_commit`` hook."""

    method: str
    message_id: str | None
    events: int  # outbox rows written: the outbox has something to publish


class _Expired(Exception):
    pass


class _Refused(Exception):
    """The policy refused the call: answered with ``error``, counted apart."""

    def __init__(self, error: exceptions.NovaException) -> None:
        self.error = error


def _clip(text: str, limit: int = _CLIP) -> str:
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


class Dispatcher:
    def __init__(self, engine: AsyncEngine, settings: Settings | None = None,
                 handlers: dict[str, Handler] | None = None, *,
                 after_commit: Callable[[CommitInfo], None] | None = None,
                 keep_connections: bool = False) -> None:
        self.engine = engine
        self.settings = settings = settings or Settings()
        # What changes results (models.md §1.2), handed to every call's Session.
        self.config = Config(strict_values=settings.strict_values,
                             isolation="nova" if settings.isolation == "nova" else "strict")
        # Who may call what (--policy); reloaded on SIGHUP through ``policy.reload()``.
        self.policy = PolicyHolder(settings.policy_file)
        self.handlers = HANDLERS if handlers is None else handlers
        # Called after every committed write, outside the call's time bound; it must not
        # block (the server kicks its outbox publisher from it).
        self.after_commit = after_commit
        # SQLite has no row locks: one call at a time keeps the same races closed.
        self._sqlite = is_sqlite(engine)
        limit = 1 if self._sqlite else max(self.settings.pool_size, 1)
        self._slots = asyncio.Semaphore(limit)
        self.waiting = 0  # calls waiting for a slot (a metric)
        # Each call's connection; ``keep_connections`` keeps them checked out between
        # calls (the conductor process does; close() gives them back).
        self.connections = Connections(engine, keep=keep_connections)

    async def close(self) -> None:
        await self.connections.close()

    async def handle(self, body: bytes, delivery: Delivery) -> Outcome:
        if not delivery.received:
            delivery.received = time.monotonic()
        method = "?"
        logs.broker_user.set(delivery.broker_user)
        try:
            request = envelope.decode_request(body, max_size=self.settings.max_message_size)
            if catalog.get(request.method) is not None or \
                    request.method == envelope.BATCH_METHOD:
                method = request.method  # never an unbounded caller string in metrics
            return await self._handle(request, delivery, method)
        except _Expired:
            return Outcome(None, method, "Expired", expired=True)
        except _Refused as refused:
            outcome = self._error(refused.error, method)
            outcome.refused = "policy"
            return outcome
        except envelope.EnvelopeError as exc:
            reason = _clip(str(exc))
            log.warning("refused request %s: %s", _clip(str(delivery.message_id)), reason)
            return self._error(exceptions.InvalidRequest(reason=reason), method)
        except exceptions.NovaException as exc:
            return self._error(exc, method)
        except NotImplementedError as exc:
            # Declared-only functions (handlers.DECLARED_ONLY): an answer, not a bug.
            return self._error(self._remote(exc), method)
        except Exception as exc:  # a handler bug must not cost the caller its reply
            log.exception("%s failed", method)
            return self._error(self._remote(exc), method)

    async def _handle(self, request: envelope.Request, delivery: Delivery,
                      method: str) -> Outcome:
        work = self._prepare_batch(request, delivery.broker_user) \
            if request.calls is not None else \
            self._prepare(request.method, request.context, request.args, request.kwargs,
                          delivery.broker_user)
        message_id = delivery.message_id if work.is_write else None
        key = self._call_key(request, work, delivery) if message_id else None
        self.waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        try:
            return await self._run_in_slot(request, delivery, method, work, message_id, key)
        finally:
            self._slots.release()

    async def _run_in_slot(self, request: envelope.Request, delivery: Delivery, method: str,
                           work: _Call | _Batch, message_id: str | None,
                           key: replies.CallKey | None) -> Outcome:
        seconds, reason = self._time_bound(request, delivery)
        if message_id and key and (delivery.redelivered or request.attempt > 1):
            stored = await self._stored(message_id, key)
            if stored is not None:
                log.info("%s %s: answered from the reply store (already applied)",
                         method, message_id)
                return Outcome(stored, method, replayed=True)
        try:
            reply, events = await self._bounded(method, work, message_id, key,
                                                seconds, reason)
        except sa_exc.IntegrityError as exc:
            # A duplicate of this message that committed first beats us on the reply
            # store's key; any other integrity failure is the handler's DBError.
            stored = await self._stored(message_id, key) if message_id and key \
                else None
            if stored is None:
                raise _db_error(exc) from None
            return Outcome(stored, method, replayed=True)
        if work.is_write and self.after_commit is not None:
            try:
                self.after_commit(CommitInfo(method, message_id, events))
            except Exception:  # the call committed: its caller gets its reply regardless
                log.exception("after-commit hook failed for %s", method)
        return Outcome(reply, method)

    def _call_key(self, request: envelope.Request, work: _Call | _Batch,
                  delivery: Delivery) -> replies.CallKey:
        if isinstance(work, _Batch):
            assert request.calls is not None
            arguments: Any = [[c.method, c.args, c.kwargs, c.context] for c in request.calls]
            context = RequestContext.from_dict(request.context)
        else:
            arguments = [request.method, request.args, request.kwargs]
            context = work.context
        try:
            digest = replies.digest(arguments)
        except (TypeError, ValueError) as exc:
            raise exceptions.InvalidRequest(reason=_clip(f"arguments: {exc}")) from None
        return replies.CallKey(request.method, digest, context.user_id, context.project_id,
                               delivery.broker_user)

    def _resolve(self, method: str) -> tuple[catalog.Function, Handler]:
        func = catalog.get(method)
        if func is None or func.kind == "local":
            raise exceptions.InvalidRequest(reason=f"unknown method {_clip(repr(method))}")
        handler = self.handlers.get(method)
        if handler is None:
            raise exceptions.NotImplementedInConductor(method=method)
        return func, handler

    def _prepare(self, method: str, raw_context: dict[str, Any], args: list[Any],
                 kwargs: dict[str, Any], broker_user: str | None) -> _Call:
        """Resolve, bind and access-check one call before any database work."""
        func, handler = self._resolve(method)
        context = RequestContext.from_dict(raw_context)  # InvalidRequest naming the field
        logs.request_id.set(context.request_id)
        try:
            self.policy.check(broker_user, func, context)
        except exceptions.NotAuthorized as exc:
            log.warning("refused %s from broker user %s: %s", method,
                        logs.short(broker_user, 64), exc)
            raise _Refused(exc) from None
        try:
            bound = func.signature.bind(context, *args, **kwargs)
        except TypeError as exc:
            raise exceptions.InvalidRequest(
                reason=_clip(f"{method}{func.signature}: {exc}", 2 * _CLIP)) from None
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

    def _prepare_batch(self, request: envelope.Request, broker_user: str | None) -> _Batch:
        assert request.calls is not None
        calls = []
        for index, call in enumerate(request.calls):
            try:
                if call.method == envelope.BATCH_METHOD:
                    raise exceptions.InvalidRequest(reason="a batch cannot hold a batch")
                prepared = self._prepare(call.method, call.context or request.context,
                                         call.args, call.kwargs, broker_user)
                if not prepared.is_write:
                    raise exceptions.InvalidRequest(
                        reason=f"{call.method} is a read: only writes can be queued")
            except exceptions.NovaException as exc:
                exc.batch_index = index
                raise
            except _Refused as refused:
                refused.error.batch_index = index
                raise
            calls.append(prepared)
        return _Batch(calls)

    def _time_bound(self, request: envelope.Request, delivery: Delivery
                    ) -> tuple[float, str]:
        """Seconds the call may run, and what bounds it; _Expired if none are left."""
        seconds, reason = self.settings.max_call_seconds, "the conductor's max_call_seconds"
        caller = None
        if request.timeout is not None:
            caller = delivery.received + request.timeout - time.monotonic()
        if request.deadline is not None:
            skewed = request.deadline + self.settings.clock_skew - time.time()
            caller = skewed if caller is None else min(caller, skewed)
        if caller is not None and caller <= 0:
            log.info("dropping %s (%s): its caller gave up %.1f s ago", request.method,
                     _clip(str(delivery.message_id)), -caller)
            raise _Expired()
        if caller is not None and caller < seconds:
            seconds, reason = caller, "its caller's deadline"
        return seconds, reason

    async def _stored(self, message_id: str, key: replies.CallKey) -> bytes | None:
        try:
            async with self.engine.connect() as conn:
                stored = await replies.stored_reply(conn, message_id)
        except (sa_exc.DBAPIError, OSError) as exc:
            raise _connection_error(exc) from None
        if stored is None:
            return None
        stored_key, reply = stored
        if stored_key != key:
            log.warning("refused %s: message id %s was used by a different call",
                        key.method, _clip(message_id))
            raise exceptions.InvalidRequest(
                reason=f"message id {_clip(message_id)} was already used by a different "
                       f"call; a new call needs a new message id")
        return reply

    async def _bounded(self, method: str, work: _Call | _Batch, message_id: str | None,
                       key: replies.CallKey | None, seconds: float, reason: str
                       ) -> tuple[bytes, int]:
        """Run the transaction within ``seconds``; CallTimeout past them."""
        def timeout() -> exceptions.CallTimeout:
            return exceptions.CallTimeout(method=method, seconds=round(seconds, 3),
                                          limit=reason)
        if self._sqlite:
            # A cancelled aiosqlite statement keeps running in its thread on the one
            # connection; what a caller can make slow there is REGEXP, bounded by time.
            budget = regexp_budget(self.engine)
            if budget is None:
                return await self._transaction(method, work, message_id, key)
            before = budget.timeouts
            budget.deadline = time.monotonic() + seconds
            try:
                return await self._transaction(method, work, message_id, key)
            except exceptions.DBError:
                if budget.timeouts != before:
                    raise timeout() from None
                raise
            finally:
                budget.deadline = None
        bound = asyncio.timeout(seconds)
        try:
            async with bound:
                return await self._transaction(method, work, message_id, key)
        except TimeoutError as exc:
            if not bound.expired():  # a driver's own timeout (connecting), not ours
                raise _connection_error(exc) from None
            # asyncpg has cancelled the running query; the transaction rolled back.
            log.warning("%s (%s) cancelled after %.1f s: %s", method,
                        _clip(str(message_id)), seconds, reason)
            raise timeout() from None
        except _StatementTimeout:
            limit = self.settings.max_call_seconds
            raise exceptions.CallTimeout(method=method, seconds=limit,
                                         limit="the database's statement_timeout") from None

    async def _transaction(self, method: str, work: _Call | _Batch, message_id: str | None,
                           key: replies.CallKey | None) -> tuple[bytes, int]:
        """The reply and the number of outbox events recorded."""
        attempt = 0
        while True:
            attempt += 1
            try:
                read = not work.is_write and self.connections.autocommit is not None
                async with self.connections.connection(read) as conn:
                    if read:
                        return self._encode_result(await work.run(conn), method), 0
                    async with conn.begin():
                        result = await work.run(conn)
                        if work.deferred is not None:
                            reply = encode_error(work.deferred)  # committed, as an error
                        else:
                            reply = self._encode_result(result, method)
                        if message_id and key:
                            await replies.record_reply(conn, message_id, key, reply)
                return reply, work.events
            except sa_exc.IntegrityError:
                raise
            except sa_exc.DBAPIError as exc:
                if _sqlstate(exc) == _QUERY_CANCELED:
                    raise _StatementTimeout() from None
                if _sqlstate(exc) in _RETRY_SQLSTATES and attempt <= self.settings.db_retries:
                    delay = self.settings.db_retry_delay * 2 ** (attempt - 1)
                    log.info("%s: %s, retry %d in %.2f s", method, _sqlstate(exc), attempt,
                             delay)
                    await asyncio.sleep(delay)
                    continue
                raise _db_error(exc) from None
            except OSError as exc:
                raise _connection_error(exc) from None

    def _encode_result(self, result: Any, method: str) -> bytes:
        try:
            return envelope.encode_result(result)
        except (TypeError, ValueError) as exc:
            log.exception("%s returned a value the wire cannot carry", method)
            raise exceptions.RemoteError(exc_type=type(exc).__name__, value=str(exc)) \
                from None

    def _remote(self, exc: BaseException) -> exceptions.RemoteError:
        tb = "".join(traceback.format_exception(exc)) if self.settings.debug else None
        return exceptions.RemoteError(exc_type=type(exc).__name__, value=_clip(str(exc)),
                                      traceback=tb)

    def _error(self, exc: exceptions.NovaException, method: str) -> Outcome:
        return Outcome(encode_error(exc), method, type(exc).__name__)


class _StatementTimeout(Exception):
    """PostgreSQL's statement_timeout cancelled a statement (SQLSTATE 57014)."""


@dataclass
class _Call:
    method: str
    handler: Handler
    context: RequestContext
    kwargs: dict[str, Any]
    is_write: bool
    config: Config
    events: int = 0  # outbox rows the last run recorded
    deferred: Exception | None = None  # session.fail_after_commit's error

    async def run(self, conn: AsyncConnection) -> Any:
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
    deferred: Exception | None = None  # never: a deferred error undoes a batch

    @property
    def events(self) -> int:
        return sum(call.events for call in self.calls)

    async def run(self, conn: AsyncConnection) -> list[Any]:
        results = []
        for index, call in enumerate(self.calls):
            try:
                results.append(await call.run(conn))
                if call.deferred is not None:
                    raise call.deferred  # in a batch it undoes everything
            except exceptions.NovaException as exc:
                exc.batch_index = index
                raise
            except sa_exc.DBAPIError as exc:
                if _sqlstate(exc) in _RETRY_SQLSTATES or _sqlstate(exc) == _QUERY_CANCELED:
                    raise  # the whole batch is retried, or timed out
                error = _db_error(exc)
                error.batch_index = index
                raise error from None
        return results


def encode_error(exc: exceptions.NovaException | Exception) -> bytes:
    if not isinstance(exc, exceptions.NovaException):
        exc = exceptions.RemoteError(exc_type=type(exc).__name__, value=_clip(str(exc)))
    wire = exc.to_wire()
    if exc.batch_index is not None:
        wire["batch_index"] = exc.batch_index
    try:
        return envelope.encode_error(wire)
    except (TypeError, ValueError):
        # kwargs the wire cannot carry: keep class and message, show the rest as text.
        wire["kwargs"] = {k: _clip(repr(v)) for k, v in wire["kwargs"].items()}
        return envelope.encode_error(wire)


def _sqlstate(exc: sa_exc.DBAPIError) -> str | None:
    orig = getattr(exc, "orig", None)
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return state if isinstance(state, str) else None


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
