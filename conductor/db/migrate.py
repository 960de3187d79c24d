"""Alembic, driven from code: ``conductor db sync`` and the start-up schema check."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncEngine

from conductor.db.engine import normalise_url

MIGRATIONS = Path(__file__).with_name("migrations")


class SchemaBehind(RuntimeError):
    """The database schema is older than this conductor's code."""


def alembic_config(url: str) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    # ConfigParser interpolation would choke on '%' in passwords.
    cfg.set_main_option("sqlalchemy.url",
                        normalise_url(url).render_as_string(hide_password=False)
                        .replace("%", "%%"))
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory(str(MIGRATIONS)).get_current_head()


def upgrade(url: str, revision: str = "head") -> None:
    """Create or upgrade the schema (runs its own event loop; call from sync code)."""
    command.upgrade(alembic_config(url), revision)


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(
            lambda sync_conn: MigrationContext.configure(sync_conn).get_current_revision())


async def check_schema(engine: AsyncEngine) -> None:
    current = await current_revision(engine)
    head = head_revision()
    if current != head:
        raise SchemaBehind(
            f"the database schema is at revision {current or 'none (empty database)'}, "
            f"this conductor needs {head}: run `conductor db sync` first")


def run_migrations_online(config: AlembicConfig, target_metadata: Any) -> None:
    """What env.py runs: upgrade through an async engine."""
    from conductor.db.engine import make_engine

    async def _run() -> None:
        engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
        try:
            async with engine.begin() as conn:
                await conn.run_sync(_do_run, config, target_metadata)
        finally:
            await engine.dispose()

    def _do_run(sync_conn: Any, cfg: AlembicConfig, metadata: Any) -> None:
        from alembic import context

        context.configure(connection=sync_conn, target_metadata=metadata,
                          render_as_batch=sync_conn.dialect.name == "sqlite",
                          compare_type=True)
        with context.begin_transaction():
            context.run_migrations()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(_run())
        return
    raise RuntimeError("run `conductor db sync` outside a running event loop")
