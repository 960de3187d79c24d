"""Connections to the broker, made in one place.

``url`` may name several nodes of one RabbitMQ cluster (a list, or one string of URLs
separated by commas): a connection is made to the first that answers, and a robust
connection that loses its node reconnects to the next one in turn.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aio_pika
from aio_pika.abc import AbstractConnection, AbstractRobustConnection
from aio_pika.exceptions import CONNECTION_EXCEPTIONS
from yarl import URL

from client.urls import broker_urls
from conductor import amqp_decoding

# Installed before any frame is decoded: see the module for why.
amqp_decoding.install()

# Seconds between reconnection attempts with several nodes (aio-pika's default, 5, with
# one): each attempt goes to another node, and callers wait on every second lost.
FAILOVER_INTERVAL = 1.0
_UNREACHABLE = (*CONNECTION_EXCEPTIONS, TimeoutError)


class _FailoverConnection(aio_pika.RobustConnection):
    """A robust connection that moves on to the next node after every close or failed
    attempt (aio-pika's own reconnects to its one URL, which may be the dead node)."""

    alternates: tuple[URL, ...] = ()

    async def _on_connection_close(self, closing: Any) -> None:
        if self.alternates:
            self.alternates = (*self.alternates[1:], self.alternates[0])
            self.url = self.alternates[0]
        await super()._on_connection_close(closing)


async def connect(url: str | Sequence[str], name: str) -> AbstractRobustConnection:
    """A robust connection named ``name`` in the broker's connection listings."""
    urls = broker_urls(url)
    failure: BaseException | None = None
    for i, one in enumerate(urls):
        try:
            connection = await aio_pika.connect_robust(
                one, client_properties={"connection_name": name},
                connection_class=_FailoverConnection)
        except _UNREACHABLE as exc:
            failure = exc
            continue
        if len(urls) > 1:
            # From here on: reconnect to the node after this one, then the next.
            connection.alternates = tuple(URL(u) for u in urls[i:] + urls[:i])
            connection.reconnect_interval = FAILOVER_INTERVAL
        return connection
    assert failure is not None
    raise failure


async def connect_once(url: str | Sequence[str]) -> AbstractConnection:
    """A plain connection to the first node that answers (for short-lived commands)."""
    urls = broker_urls(url)
    failure: BaseException | None = None
    for one in urls:
        try:
            return await aio_pika.connect(one)
        except _UNREACHABLE as exc:
            failure = exc
    assert failure is not None
    raise failure
