"""Engines: what ``nova.db.sqlalchemy.session`` did, for an async conductor.

The URL picks the backend: PostgreSQL through asyncpg in production, SQLite through
aiosqlite as the embedded default.  Connections idle for a second or more are checked
before use, so a database restart costs the calls in flight, not the process.  At
start-up an unreachable database is retried with backoff for a bounded time.
"""

from __future__ import annotations

import asyncio
import logging
import time
import urllib.parse
import weakref
from dataclasses import dataclass
from typing import Any

import regex
from sqlalchemy import event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.util import await_only

log = logging.getLogger(__name__)

DEFAULT_DB_URL = "sqlite+aiosqlite:///conductor.sqlite"
IDLE_PING_SECONDS = 1.0
POOL_RECYCLE_SECONDS = 3600
DEFAULT_STATEMENT_TIMEOUT = 30.0
# libpq's TLS parameters, written in the URL's query as psql takes them.  asyncpg reads
# them from a DSN only (as keyword arguments, which SQLAlchemy makes of the query, it
# refuses them), so make_engine moves them into one.
LIBPQ_TLS = ("sslmode", "sslrootcert", "sslcert", "sslkey", "sslcrl", "sslpassword",
             "ssl_min_protocol_version", "ssl_max_protocol_version")


@dataclass
class RegexpBudget:
    """How long SQLite's REGEXP may run, per engine.

    On SQLite, REGEXP is a Python function in the conductor's own process, and one
    catastrophic pattern would hold the only connection (and every call behind it) for
    as long as it backtracks.  The ``regex`` package stops a match at a timeout; the
    dispatcher sets ``deadline`` (``time.monotonic()``) to the end of the current call
    (SQLite runs one call at a time) and reads ``timeouts`` to tell a timeout from a bad
    pattern, since sqlite3 turns every exception in a function into the same error.
    """

    seconds: float = DEFAULT_STATEMENT_TIMEOUT
    deadline: float | None = None
    timeouts: int = 0

    def regexp(self, pattern: str | None, value: str | None) -> bool | None:
        if pattern is None or value is None:
            return None
        now = time.monotonic()
        limit = self.seconds if self.deadline is None else \
            min(self.seconds, self.deadline - now)
        try:
            return regex.search(pattern, value, timeout=max(limit, 0.001)) is not None
        except TimeoutError:
            self.timeouts += 1
            raise


_budgets: weakref.WeakKeyDictionary[Any, RegexpBudget] = weakref.WeakKeyDictionary()


def regexp_budget(engine: AsyncEngine) -> RegexpBudget | None:
    """The REGEXP budget of a SQLite engine made by :func:`make_engine`, else None."""
    return _budgets.get(engine.sync_engine)


class DatabaseUnavailable(RuntimeError):
    """The database did not answer within the start-up retry window."""


def normalise_url(url: str | URL) -> URL:
    """Map plain driver names to their async drivers (``postgresql://`` → asyncpg)."""
    u = make_url(url)
    if u.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        u = u.set(drivername="postgresql+asyncpg")
    elif u.drivername in ("sqlite", "sqlite+pysqlite"):
        u = u.set(drivername="sqlite+aiosqlite")
    return u


def safe_url(url: str | URL) -> str:
    """The URL as it may appear in logs: password (and a key's sslpassword) hidden."""
    try:
        u = normalise_url(url)
        hidden = {k: "***" for k in u.query if "password" in k}
        return u.update_query_dict(hidden).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable database URL>"


def is_sqlite(engine_or_url: AsyncEngine | str | URL) -> bool:
    if isinstance(engine_or_url, AsyncEngine):
        return engine_or_url.dialect.name == "sqlite"
    return normalise_url(engine_or_url).get_backend_name() == "sqlite"


def make_engine(url: str | URL = DEFAULT_DB_URL, *, sqlite_synchronous: bool = True,
                pool_size: int = 20, echo: bool = False,
                statement_timeout: float = DEFAULT_STATEMENT_TIMEOUT,
                **kwargs: Any) -> AsyncEngine:
    """Create the engine for ``url``.

    On SQLite the dialect registers a Python ``REGEXP`` function on every connection, so
    ``column.regexp_match()`` filters behave as PostgreSQL's ``~``; with
    ``sqlite_synchronous=False`` writes are not fsynced (fast, for tests and throwaway
    databases).

    ``statement_timeout`` (seconds) bounds every statement: on PostgreSQL as the
    connection's ``statement_timeout`` setting (a server setting, so it holds on the
    autocommit read engine too, where ``SET LOCAL`` would do nothing), on SQLite as the
    time a REGEXP match may take (:class:`RegexpBudget`).
    """
    u = normalise_url(url)
    sqlite = u.get_backend_name() == "sqlite"
    # PostgreSQL connections are checked by _install_idle_ping instead of pre-ping.
    options: dict[str, Any] = {"pool_pre_ping": sqlite, "echo": echo}
    if sqlite:
        # One connection: SQLite serialises writers anyway, and a single connection keeps
        # an in-memory database alive for the life of the engine.
        from sqlalchemy.pool import StaticPool
        options.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
    else:
        # A fixed pool as large as the dispatcher's concurrency: overflow connections
        # would be opened and closed again under load, a backend fork each time.
        options.update(pool_size=pool_size, max_overflow=0, pool_recycle=POOL_RECYCLE_SECONDS)
        connect_args: dict[str, Any] = {"server_settings": {
            "statement_timeout": str(max(int(statement_timeout * 1000), 1))}}
        tls = {k: v for k, v in u.query.items() if k in LIBPQ_TLS}
        if tls:
            u = u.difference_update_query(tls)
            connect_args["dsn"] = "postgresql://?" + urllib.parse.urlencode(tls, doseq=True)
        elif "ssl" not in u.query:
            # asyncpg tries TLS first by default ("prefer"); ask for it in the URL.
            connect_args["ssl"] = False
        options["connect_args"] = connect_args
    options.update(kwargs)
    engine = create_async_engine(u, **options)
    if sqlite:
        budget = RegexpBudget(seconds=statement_timeout)
        _budgets[engine.sync_engine] = budget
        _install_sqlite_listeners(engine, sqlite_synchronous, budget)
    else:
        _install_idle_ping(engine)
    return engine


def _install_idle_ping(engine: AsyncEngine, idle: float = IDLE_PING_SECONDS) -> None:
    """Check a connection before use when it has been idle for ``idle`` seconds.

    SQLAlchemy's pre-ping on asyncpg costs three round trips (BEGIN, ``;``, ROLLBACK) on
    every checkout.  A connection in constant use has just proven itself, and one that
    breaks mid-call makes SQLAlchemy invalidate the whole pool; what pre-ping really adds
    is catching connections that died while idle (a database restart overnight), so only
    those are pinged, with one round trip, and replaced if dead.
    """

    @event.listens_for(engine.sync_engine, "checkin")
    def _checkin(_dbapi_conn: Any, record: Any) -> None:
        record.info["conductor_idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("conductor_idle_since")
        if since is None or time.monotonic() - since < idle:
            return
        try:
            await_only(dbapi_conn._connection.fetchrow(";"))
        except Exception as exc:
            log.info("replacing a database connection that died while idle: %s", exc)
            raise DisconnectionError() from exc


def _install_sqlite_listeners(engine: AsyncEngine, synchronous: bool,
                              budget: RegexpBudget) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Replaces the dialect's re-based REGEXP (registered before this listener runs).
        dbapi_conn.create_function("regexp", 2, budget.regexp, deterministic=True)
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA busy_timeout = 30000")
        cursor.execute("PRAGMA foreign_keys = ON")
        if not synchronous:
            cursor.execute("PRAGMA synchronous = OFF")
        cursor.close()


async def wait_for_database(engine: AsyncEngine, *, timeout: float = 30.0,
                            initial_delay: float = 0.25, max_delay: float = 5.0) -> None:
    """Return once ``SELECT 1`` succeeds; retry with backoff, at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    delay = initial_delay
    attempt = 0
    while True:
        attempt += 1
        try:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            if attempt > 1:
                log.info("database %s is reachable", safe_url(engine.url))
            return
        except Exception as exc:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DatabaseUnavailable(
                    f"database {safe_url(engine.url)} is unreachable after {attempt} "
                    f"attempts over {timeout:.0f} s: {type(exc).__name__}: {exc}") from exc
            log.warning("database %s unreachable (%s: %s); retrying in %.1f s",
                        safe_url(engine.url), type(exc).__name__, exc, delay)
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 2, max_delay)
