import sys
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from conductor.dispatch import Dispatcher
from conductor.server import Server
from conductor.settings import Settings


@pytest.fixture
async def make_conductor(amqp_url: str, pg_engine: Any, handlers: Any
                         ) -> AsyncIterator[Callable[..., Any]]:
    """Start extra in-process conductors on a fresh topic; all stopped at teardown."""
    started: list[Server] = []
    topic = f"conductor-test-{uuid.uuid4().hex[:8]}"

    async def start(prefetch: int = 128, **options: Any) -> Server:
        server = Server(Dispatcher(pg_engine, Settings(**options)).handle,
                        Settings(amqp_url=amqp_url, topic=topic, prefetch=prefetch))
        await server.start()
        started.append(server)
        return server

    start.topic = topic  # type: ignore[attr-defined]
    yield start
    for server in started:
        await server.stop(grace=5)
    from tests.conftest import _delete_topic

    await _delete_topic(amqp_url, topic)


def conductor_command(amqp_url: str, db_url: str, topic: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "conductor.cli", "serve", "--amqp-url", amqp_url,
            "--db-url", db_url, "--topic", topic, "--log-level", "WARNING", *extra]
