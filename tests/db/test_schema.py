"""The migrated schema is the models, exactly; serve refuses a schema that is behind."""

import asyncio
import subprocess
import sys

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from conductor.db.base import Base
from conductor.db.engine import make_engine
from conductor.db.migrate import SchemaBehind, check_schema, head_revision
from tests.conftest import _create_pg_database, _drop_pg_database


def _diff(sync_conn):
    postgresql = sync_conn.dialect.name == "postgresql"

    def include(obj, name, kind, reflected, compare_to):
        # PostgreSQL-only indexes (GIN trigram) exist in the models, not on SQLite.
        return postgresql or not (kind == "index" and
                                  obj.dialect_options["postgresql"].get("using"))

    # SQLite renders boolean server defaults its own way; compare them on PostgreSQL.
    context = MigrationContext.configure(
        sync_conn, opts={"compare_type": True, "compare_server_default": postgresql,
                         "include_object": include})
    return compare_metadata(context, Base.metadata)


async def test_migrated_schema_matches_models(engine):
    async with engine.connect() as conn:
        diff = await conn.run_sync(_diff)
    assert diff == []


async def test_schema_is_at_head(engine):
    await check_schema(engine)
    async with engine.connect() as conn:
        version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
    assert version == head_revision()


async def test_serve_refuses_an_empty_database(pg_base_url, amqp_url):
    name = "conductor_test_empty"
    url = await _create_pg_database(pg_base_url, name)
    try:
        engine = make_engine(url)
        with pytest.raises(SchemaBehind, match="conductor db sync"):
            await check_schema(engine)
        await engine.dispose()
        proc = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "conductor.cli", "serve", "--db-url", url,
                             "--amqp-url", amqp_url, "--topic", "never-consumed"],
            capture_output=True, text=True, timeout=60)
        assert proc.returncode == 1
        assert "conductor db sync" in proc.stderr
    finally:
        await _drop_pg_database(pg_base_url, name)


async def test_unreachable_database_exits_naming_the_url_without_password(amqp_url):
    url = "postgresql+asyncpg://someone:s3cret@127.0.0.1:1/nowhere"
    proc = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "conductor.cli", "serve", "--db-url", url,
                         "--amqp-url", amqp_url, "--db-wait", "1"],
        capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "127.0.0.1:1/nowhere" in proc.stderr and "unreachable" in proc.stderr
    assert "s3cret" not in proc.stderr


async def test_foreign_keys_hold_on_both_backends(engine):
    from sqlalchemy import exc as sa_exc

    from conductor.db.models import ComputeNode, InstanceFault
    from conductor.db.session import Session

    # Enforced references fail alike on PostgreSQL and SQLite ...
    with pytest.raises(sa_exc.IntegrityError):
        async with engine.begin() as conn:
            await Session(conn).insert(ComputeNode, {"service_id": 424242})
    # ... and the ones models.md §3 says must not be enforced are not.
    async with engine.begin() as conn:
        await Session(conn).insert(InstanceFault, {"instance_uuid": "no-such-instance",
                                                   "code": 404})
