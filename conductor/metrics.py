"""Prometheus metrics, and the HTTP port that serves them with /healthz and /readyz.

Names follow oslo.metrics' ``rpc_server_*`` family under a ``conductor_`` prefix.  Each
conductor process has its own registry (several run in one test process) and, with
``--workers N``, its own port: worker ``i`` listens on ``--metrics-port + i``.

The HTTP side is a few lines over ``asyncio.start_server`` rather than prometheus-client's
threaded server, because /readyz must ask the broker and the database from the event loop
that owns their connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

log = logging.getLogger(__name__)

# A check answers None when healthy, else the reason.
Check = Callable[[], Awaitable[str | None]]

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            30.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._children: dict[tuple[str, str], tuple[Any, Any]] = {}
        r = self.registry
        self.calls = Counter(
            "conductor_rpc_server_invocations", "Calls answered, by function and outcome "
            "(ok, or the error class the caller received)", ["method", "outcome"],
            registry=r)
        self.latency = Histogram(
            "conductor_rpc_server_processing_seconds", "Time from delivery to reply, by "
            "function", ["method"], buckets=_BUCKETS, registry=r)
        self.in_flight = Gauge("conductor_rpc_server_in_flight",
                               "Calls received and not yet answered", registry=r)
        self.redeliveries = Counter(
            "conductor_rpc_server_redeliveries", "Messages the broker delivered again "
            "(a conductor died or lost its channel before acknowledging them)", registry=r)
        self.replays = Counter(
            "conductor_rpc_server_replays", "Writes answered from the reply store "
            "instead of running again", registry=r)
        self.expired = Counter(
            "conductor_rpc_server_expired", "Calls dropped unexecuted because their "
            "caller had stopped waiting", registry=r)
        self.refused = Counter(
            "conductor_rpc_server_refused", "Calls refused before running, by reason "
            "(policy, invalid, reply_to)", ["reason"], registry=r)
        self.dead_letter_depth = Gauge(
            "conductor_dead_letter_messages", "Messages in <topic>.dead (poison set aside "
            "by the broker's delivery limit)", registry=r)
        self.outbox_backlog = Gauge("conductor_outbox_backlog",
                                    "Committed events not yet published", registry=r)
        self.pool_in_use = Gauge("conductor_db_pool_in_use",
                                 "Database connections checked out", registry=r)
        self.pool_waiting = Gauge("conductor_db_pool_waiting",
                                  "Calls waiting for a database slot", registry=r)

    def observe_call(self, method: str, outcome: str, seconds: float) -> None:
        # The labelled children, looked up once: prometheus_client's labels() costs more
        # than the increment.  Bounded: methods are catalog names, outcomes error classes.
        children = self._children.get((method, outcome))
        if children is None:
            children = self._children[(method, outcome)] = (
                self.calls.labels(method, outcome), self.latency.labels(method))
        children[0].inc()
        children[1].observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class HealthServer:
    """GET /metrics, /healthz (the consumer is attached), /readyz (broker and database
    answer within ``timeout``); anything else is 404."""

    def __init__(self, metrics: Metrics, live: Check, ready: list[Check],
                 before_scrape: Callable[[], Awaitable[None]] | None = None,
                 timeout: float = 2.0) -> None:
        self.metrics = metrics
        self.live = live
        self.ready = ready
        self.before_scrape = before_scrape
        self.timeout = timeout
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> int:
        self._server = await asyncio.start_server(self._serve, host, port)
        bound = self._server.sockets[0].getsockname()[1]
        log.info("metrics and health on http://%s:%d/metrics, /healthz, /readyz", host,
                 bound)
        return int(bound)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(self.timeout * 3):
                request = await reader.readline()
                while (await reader.readline()).strip():  # headers: ignored
                    pass
                parts = request.decode("latin-1").split()
                path = parts[1].split("?", 1)[0] if len(parts) >= 2 else ""
                status, ctype, body = await self._route(parts[0] if parts else "", path)
            writer.write(f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\n"
                         f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
                         .encode() + body)
            await writer.drain()
        except (TimeoutError, ConnectionError, UnicodeError):
            pass
        finally:
            writer.close()

    async def _route(self, verb: str, path: str) -> tuple[str, str, bytes]:
        if verb not in ("GET", "HEAD"):
            return "405 Method Not Allowed", "text/plain", b"GET only\n"
        if path == "/metrics":
            if self.before_scrape is not None:
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(self.timeout):
                        await self.before_scrape()
            return "200 OK", CONTENT_TYPE_LATEST, self.metrics.render()
        if path == "/healthz":
            return _answer(await self._run(self.live))
        if path == "/readyz":
            reasons = [r for r in await asyncio.gather(*(self._run(c) for c in self.ready))
                       if r]
            return _answer("; ".join(reasons) or None)
        return "404 Not Found", "text/plain", b"try /metrics, /healthz or /readyz\n"

    async def _run(self, check: Check) -> str | None:
        try:
            async with asyncio.timeout(self.timeout):
                return await check()
        except TimeoutError:
            return f"no answer within {self.timeout:g} s"
        except Exception as exc:  # a failing check is the answer, not a crash
            return f"{type(exc).__name__}: {exc}"


def _answer(reason: str | None) -> tuple[str, str, bytes]:
    if reason is None:
        return "200 OK", "text/plain", b"ok\n"
    return "503 Service Unavailable", "text/plain", f"{reason}\n".encode()
