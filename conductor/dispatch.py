"""From request bytes to reply bytes: decode, check, run one transaction, encode.

Knows nothing of AMQP (``server.py`` does) and nothing of tables (handlers do).  Every
failure becomes an error reply; nothing a caller sends can raise out of :meth:`handle`.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine

from conductor.db.engine import is_sqlite
from conductor.db.query import require_admin, require_context
from conductor.db.session import Session
from conductor.handlers import HANDLERS, Handler
from schemas import catalog, codec, envelope, exceptions
from schemas.context import RequestContext

log = logging.getLogger(__name__)

# PostgreSQL SQLSTATEs worth retrying: serialization_failure, deadlock_detected.
_RETRY_SQLSTATES = {"40001", "40P01"}


@dataclass
class Options:
    debug: bool = False
    max_message_size: int = 8 * 1024 * 1024
    clock_skew: float = 5.0
    db_retries: int = 5
    db_retry_delay: float = 0.05


@dataclass
class Outcome:
    reply: bytes | None  # None: nothing to send (the call expired unexecuted)
    method: str
    ok: bool
    error_class: str | None = None


class Dispatcher:
    def __init__(self, engine: AsyncEngine, options: Options | None = None,
                 handlers: dict[str, Handler] | None = None) -> None:
        self.engine = engine
        self.options = options or Options()
        self.handlers = HANDLERS if handlers is None else handlers
        # SQLite has no row locks: one call at a time keeps the same races closed.
        self._serial = asyncio.Lock() if is_sqlite(engine) else None

    async def handle(self, body: bytes, message_id: str | None = None) -> Outcome:
        method = "?"
        try:
            request = envelope.decode_request(body, max_size=self.options.max_message_size)
            method = request.method
            if request.deadline is not None and \
                    time.time() > request.deadline + self.options.clock_skew:
                log.info("dropping %s (%s): its caller gave up %.1f s ago", method,
                         message_id, time.time() - request.deadline)
                return Outcome(None, method, False, "Expired")
            result = await self._run(request)
            return Outcome(self._encode_result(result, method), method, True)
        except envelope.EnvelopeError as exc:
            log.warning("refused request %s: %s", message_id, exc)
            return self._error(exceptions.InvalidRequest(reason=str(exc)), method)
        except exceptions.NovaException as exc:
            return self._error(exc, method)
        except Exception as exc:  # a handler bug must not cost the caller its reply
            log.exception("%s failed", method)
            return self._error(self._remote(exc), method)

    async def _run(self, request: envelope.Request) -> Any:
        func, handler = self._resolve(request.method)
        try:
            context = RequestContext.from_dict(request.context)
        except (TypeError, ValueError) as exc:
            raise exceptions.InvalidRequest(reason=f"bad context: {exc}") from None
        try:
            bound = func.signature.bind(context, *request.args, **request.kwargs)
        except TypeError as exc:
            raise exceptions.InvalidRequest(
                reason=f"{request.method}{func.signature}: {exc}") from None
        if bound.arguments.get("session") is not None:
            raise exceptions.InvalidRequest(
                reason=f"{request.method}: 'session' is in-process only; send None")
        if func.access == "admin":
            require_admin(context)
        elif func.access == "any":
            require_context(context)
        args = bound.args[1:]
        return await self._transaction(request.method, handler, context, args,
                                       bound.kwargs)

    def _resolve(self, method: str) -> tuple[catalog.Function, Handler]:
        func = catalog.get(method)
        if func is None or func.kind == "local":
            raise exceptions.InvalidRequest(reason=f"unknown method {method!r}")
        handler = self.handlers.get(method)
        if handler is None:
            raise exceptions.NotImplementedInConductor(method=method)
        return func, handler

    async def _transaction(self, method: str, handler: Handler, context: RequestContext,
                           args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        attempt = 0
        while True:
            attempt += 1
            try:
                if self._serial is not None:
                    async with self._serial:
                        return await self._once(method, handler, context, args, kwargs)
                return await self._once(method, handler, context, args, kwargs)
            except sa_exc.DBAPIError as exc:
                if _sqlstate(exc) in _RETRY_SQLSTATES and attempt <= self.options.db_retries:
                    delay = self.options.db_retry_delay * 2 ** (attempt - 1)
                    log.info("%s: %s, retry %d in %.2f s", method, _sqlstate(exc), attempt,
                             delay)
                    await asyncio.sleep(delay)
                    continue
                raise _db_error(exc) from None
            except (TimeoutError, OSError) as exc:
                raise exceptions.DBConnectionError(reason=f"{type(exc).__name__}: {exc}") \
                    from None

    async def _once(self, method: str, handler: Handler, context: RequestContext,
                    args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        async with self.engine.begin() as conn:
            return await handler(Session(conn, method), context, *args, **kwargs)

    def _encode_result(self, result: Any, method: str) -> bytes:
        try:
            return envelope.encode_result(result)
        except (TypeError, ValueError) as exc:
            log.exception("%s returned a value the wire cannot carry", method)
            return envelope.encode_error(self._remote(exc).to_wire())

    def _remote(self, exc: BaseException) -> exceptions.RemoteError:
        tb = "".join(traceback.format_exception(exc)) if self.options.debug else None
        return exceptions.RemoteError(exc_type=type(exc).__name__, value=str(exc),
                                      traceback=tb)

    def _error(self, exc: exceptions.NovaException, method: str) -> Outcome:
        wire = exc.to_wire()
        try:
            reply = envelope.encode_error(wire)
        except (TypeError, ValueError):
            # kwargs the wire cannot carry: keep class and message, drop the rest.
            wire["kwargs"] = {k: repr(v) for k, v in wire["kwargs"].items()}
            reply = envelope.encode_error(wire)
        return Outcome(reply, method, False, wire["class"])


def _sqlstate(exc: sa_exc.DBAPIError) -> str | None:
    orig = getattr(exc, "orig", None)
    return getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)


def _db_error(exc: sa_exc.DBAPIError) -> exceptions.NovaException:
    if exc.connection_invalidated or isinstance(exc, sa_exc.InterfaceError) or \
            _sqlstate(exc) in {"08000", "08003", "08006", "57P01", "57P02", "57P03"}:
        return exceptions.DBConnectionError(reason=str(exc.orig))
    if isinstance(exc, sa_exc.OperationalError) and "connect" in str(exc.orig).lower():
        return exceptions.DBConnectionError(reason=str(exc.orig))
    return exceptions.DBError(inner_exception=exc.orig)


def encode_error_for(method: str, exc: exceptions.NovaException) -> bytes:
    """An error reply built outside a dispatch (oversized body, ...)."""
    del method
    return codec.packb({"error": exc.to_wire()})
