"""Connections to the broker, made in one place."""

from __future__ import annotations

import aio_pika
from aio_pika.abc import AbstractRobustConnection

from conductor import amqp_decoding

# Installed before any frame is decoded: see the module for why.
amqp_decoding.install()


async def connect(url: str, name: str) -> AbstractRobustConnection:
    """A robust connection named ``name`` in the broker's connection listings."""
    return await aio_pika.connect_robust(url, client_properties={"connection_name": name})
