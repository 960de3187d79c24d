"""Where each call gets its database connection: kept checked out between calls.

Why: SQLAlchemy's async checkout and close run in greenlets, through the pool's events and
the isolation level set and reset each time, and cost more than the read they serve.
Measured in process (``service_get``, 64 calls in flight, CPU per call): 206 µs with a
checkout and a close per call, 85 µs with connections kept between calls; an asyncpg
pool and a hand-written floor spend 75-80 µs for the same answer.

How it stays within the pool: calls take a connection inside the dispatcher's slot, so at
most ``limit`` are held, busy or idle, and ``limit`` leaves :data:`RESERVE` connections
of the pool to the outbox, the reply purge, readiness checks and replays.  Reads take
autocommit connections, writes ones whose first statement begins a transaction; a call
that finds none of its kind idle while the limit is reached gives one of the other kind
back first.

What a held connection cannot hide:

- one idle for :data:`IDLE_PING_SECONDS` or held for :data:`RECYCLE_SECONDS` goes back to
  the pool, whose checkout pings, recycles or replaces it, as it would have anyway;
- one a call may have left in doubt is closed, never kept: invalidated, still in a
  transaction, or its call failed with anything but a Nova error (a cancelled query, a
  lost connection, a driver error).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from conductor.db.engine import IDLE_PING_SECONDS, POOL_RECYCLE_SECONDS, is_sqlite
from schemas import exceptions

log = logging.getLogger(__name__)

# Pool connections left to what runs beside the calls (outbox, purge, /readyz, replays).
RESERVE = 3
RECYCLE_SECONDS = POOL_RECYCLE_SECONDS


class Connections:
    """One connection per call from ``engine``; with ``keep``, kept between calls."""

    def __init__(self, engine: AsyncEngine, *, keep: bool = False) -> None:
        self.engine = engine
        # Reads run without BEGIN/COMMIT round trips: under READ COMMITTED every statement
        # takes its own snapshot inside a transaction too, so the answers are the same.
        # SQLite reads stay in a transaction (one connection, serialised anyway).
        self.autocommit = None if is_sqlite(engine) else \
            engine.execution_options(isolation_level="AUTOCOMMIT")
        size = getattr(engine.sync_engine.pool, "size", None)
        self.limit = max(size() - RESERVE, 0) \
            if keep and self.autocommit is not None and callable(size) else 0
        # (connection, held since, idle since), most recently used last, by "is a read".
        self._idle: dict[bool, list[tuple[AsyncConnection, float, float]]] = \
            {True: [], False: []}
        self.held = 0  # busy or idle

    @asynccontextmanager
    async def connection(self, read: bool) -> AsyncIterator[AsyncConnection]:
        """A connection for one call: autocommit for a read where the database allows,
        else one the caller wraps in ``conn.begin()``."""
        read = read and self.autocommit is not None
        engine = self.autocommit if read and self.autocommit is not None else self.engine
        if not self.limit:
            conn = await engine.connect().start()
            try:
                yield conn
            finally:
                await conn.close()
            return
        conn, since = await self._take(read, engine)
        keep = False
        try:
            yield conn
            keep = True
        except exceptions.NovaException:
            keep = True  # the handler's answer; the connection is as good as before
            raise
        finally:
            await self._give_back(conn, read, since, keep)

    async def _take(self, read: bool, engine: AsyncEngine) -> tuple[AsyncConnection, float]:
        idle = self._idle[read]
        now = time.monotonic()
        while idle:
            conn, since, last = idle.pop()
            if now - last < IDLE_PING_SECONDS and now - since < RECYCLE_SECONDS and \
                    not conn.invalidated:
                return conn, since
            await self._release(conn)
        other = self._idle[not read]
        if self.held >= self.limit and other:
            await self._release(other.pop(0)[0])  # the least recently used
        conn = await engine.connect().start()
        self.held += 1
        return conn, now

    async def _give_back(self, conn: AsyncConnection, read: bool, since: float,
                         keep: bool) -> None:
        if keep and self.held <= self.limit and not conn.closed and not conn.invalidated:
            if conn.in_transaction():
                # SQLAlchemy's own "autobegin" on an autocommit connection: nothing on
                # the server, but ended here as a close would.
                await conn.rollback()
            self._idle[read].append((conn, since, time.monotonic()))
            return
        await self._release(conn)

    async def _release(self, conn: AsyncConnection) -> None:
        self.held -= 1
        try:
            await conn.close()  # back to the pool
        except Exception as exc:  # the pool invalidates what it cannot reset
            log.debug("closing a held connection failed: %s", exc)

    async def close(self) -> None:
        """Give every idle connection back to the pool (busy ones go as their calls end)."""
        for idle in self._idle.values():
            while idle:
                await self._release(idle.pop()[0])
