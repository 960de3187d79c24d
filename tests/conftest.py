"""Where the test services come from, and the fixtures every test layer shares.

Order (DESIGN.md): CONDUCTOR_TEST_AMQP_URL / CONDUCTOR_TEST_DB_URL; else the servers on
localhost's standard ports; else testcontainers where Docker runs; else stop at once with a
message saying what to start.  Nothing skips silently.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text

from conductor.app import Conductor
from conductor.db import models
from conductor.db.base import Config
from conductor.db.engine import make_engine
from conductor.db.migrate import upgrade
from conductor.dispatch import Dispatcher
from conductor.handlers import load_all
from conductor.settings import Settings
from schemas.context import RequestContext, get_admin_context
from tests.outside_reads import nothing_read_beside_the_repository  # noqa: F401
from tests.support import LocalClient

_containers: list[Any] = []


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _docker_available() -> bool:
    try:
        import docker

        docker.from_env().ping()
        return True
    except Exception:
        return False


def _amqp_url() -> str:
    url = os.environ.get("CONDUCTOR_TEST_AMQP_URL")
    if url:
        return url
    if _port_open("127.0.0.1", 5672):
        return "amqp://guest:guest@127.0.0.1:5672/"
    if _docker_available():
        from testcontainers.rabbitmq import RabbitMqContainer

        container = RabbitMqContainer("rabbitmq:3.13-management")
        container.start()
        _containers.append(container)
        host = container.get_container_host_ip()
        port = container.get_exposed_port(5672)
        return f"amqp://guest:guest@{host}:{port}/"
    pytest.exit("no RabbitMQ for the tests: set CONDUCTOR_TEST_AMQP_URL, start one on "
                "127.0.0.1:5672 (rabbitmq-server -detached), or run Docker", returncode=3)


def _pg_url() -> str:
    url = os.environ.get("CONDUCTOR_TEST_DB_URL")
    if url:
        return url
    if _port_open("127.0.0.1", 5432):
        return "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
    if _docker_available():
        from testcontainers.postgres import PostgresContainer

        container = PostgresContainer("postgres:15", driver="asyncpg")
        container.start()
        _containers.append(container)
        return container.get_connection_url()
    pytest.exit("no PostgreSQL for the tests: set CONDUCTOR_TEST_DB_URL, start one on "
                "127.0.0.1:5432, or run Docker", returncode=3)


@pytest.fixture(scope="session")
def amqp_url() -> str:
    return _amqp_url()


@pytest.fixture(scope="session")
def pg_base_url() -> str:
    return _pg_url()


async def _create_pg_database(base_url: str, name: str) -> str:
    engine = make_engine(base_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await engine.dispose()
    return str(engine.url.set(database=name).render_as_string(hide_password=False))


async def _drop_pg_database(base_url: str, name: str) -> None:
    engine = make_engine(base_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
async def pg_url(pg_base_url: str) -> AsyncIterator[str]:
    """A fresh PostgreSQL database at the schema head, for the whole session."""
    name = f"conductor_test_{os.getpid()}"
    url = await _create_pg_database(pg_base_url, name)
    await asyncio.to_thread(upgrade, url)
    yield url
    await _drop_pg_database(pg_base_url, name)


@pytest.fixture(scope="session")
async def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("sqlite") / "conductor.sqlite"
    url = f"sqlite+aiosqlite:///{path}"
    await asyncio.to_thread(upgrade, url)
    return url


TABLES = [t.name for t in reversed(models.Base.metadata.sorted_tables)]
_SERIAL = [t.name for t in models.Base.metadata.sorted_tables
           if "id" in t.c and t.c.id.primary_key and t.c.id.autoincrement is not False
           and t.c.id.type.python_type is int]
# One round trip (a DO block is one statement): DELETE is far quicker than TRUNCATE on
# tables this small.
_PG_WIPE = "DO $$ BEGIN " + " ".join(
    [f'DELETE FROM "{n}";' for n in TABLES] +
    [f"PERFORM setval(pg_get_serial_sequence('\"{n}\"', 'id'), 1, false);"
     for n in _SERIAL]) + " END $$"


async def _wipe(engine: Any) -> None:
    async with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            await conn.exec_driver_sql(_PG_WIPE)
        else:
            for name in TABLES:
                await conn.execute(text(f'DELETE FROM "{name}"'))
            if await _has_sqlite_sequence(conn):
                await conn.execute(text("DELETE FROM sqlite_sequence"))


async def _has_sqlite_sequence(conn: Any) -> bool:
    found = await conn.execute(text(
        "SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'"))
    return found.first() is not None


@pytest.fixture(scope="session")
async def pg_engine(pg_url: str) -> AsyncIterator[Any]:
    engine = make_engine(pg_url)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
async def sqlite_engine(sqlite_url: str) -> AsyncIterator[Any]:
    engine = make_engine(sqlite_url, sqlite_synchronous=False)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
def handlers() -> dict[str, Any]:
    return load_all()


@pytest.fixture(scope="session")
async def conductor(amqp_url: str, pg_engine: Any, handlers: dict[str, Any]
                    ) -> AsyncIterator[Conductor]:
    """An in-process conductor on PostgreSQL, on a topic of its own."""
    topic = f"conductor-test-{uuid.uuid4().hex[:8]}"
    running = Conductor(Settings(amqp_url=amqp_url, topic=topic), pg_engine)
    await running.start()
    yield running
    await running.stop()
    await _delete_topic(amqp_url, topic)


async def _delete_queue(amqp_url: str, name: str) -> None:
    import aio_pika

    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        await channel.queue_delete(name)


async def _delete_topic(amqp_url: str, topic: str) -> None:
    """The topic queue and the dead-letter queue and exchange a conductor declares."""
    import aio_pika

    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        for name in (topic, f"{topic}.dead"):
            await channel.queue_delete(name)
        await channel.exchange_delete(f"{topic}.dlx")


@pytest.fixture(scope="session")
async def rpc_client(amqp_url: str, conductor: Conductor) -> AsyncIterator[Any]:
    from client import ConductorClient

    async with ConductorClient(amqp_url, topic=conductor.settings.topic, timeout=30) as db:
        yield db


@pytest.fixture(params=["rpc", "sqlite"])
def _api_backend(request: pytest.FixtureRequest) -> tuple[Any, Any, Config]:
    if request.param == "rpc":
        conductor = request.getfixturevalue("conductor")
        return (request.getfixturevalue("pg_engine"), request.getfixturevalue("rpc_client"),
                conductor.dispatcher.config)
    engine = request.getfixturevalue("sqlite_engine")
    request.getfixturevalue("handlers")
    dispatcher = Dispatcher(engine)
    return engine, LocalClient(dispatcher), dispatcher.config


@pytest.fixture
async def db(_api_backend: tuple[Any, Any, Config]) -> Any:
    """The API, through the real broker to PostgreSQL, and in-process on SQLite.

    Every test using it runs twice; the database is emptied before each run.
    """
    engine, client, _ = _api_backend
    await _wipe(engine)
    return client


@pytest.fixture
def db_config(_api_backend: tuple[Any, Any, Config]) -> Config:
    """The Config the ``db`` fixture's conductor runs with: a test may change it with
    monkeypatch (``monkeypatch.setattr(db_config, "isolation", "nova")``)."""
    return _api_backend[2]


@pytest.fixture(params=["postgresql", "sqlite"])
def _db_backend(request: pytest.FixtureRequest) -> Any:
    return request.getfixturevalue("pg_engine" if request.param == "postgresql"
                                   else "sqlite_engine")


@pytest.fixture
async def engine(_db_backend: Any) -> Any:
    """A database engine, emptied, for tests below the RPC layer."""
    await _wipe(_db_backend)
    return _db_backend


@pytest.fixture
def admin() -> RequestContext:
    return get_admin_context()


@pytest.fixture
def user() -> RequestContext:
    return RequestContext("user1", "project1")


@pytest.fixture
def other_user() -> RequestContext:
    return RequestContext("user2", "project2")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    for container in _containers:
        container.stop()
