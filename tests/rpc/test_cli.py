"""The conductor command as a user runs it."""

import asyncio
import json
import os
import subprocess
import sys

import pytest

from conductor.handlers import load_all
from schemas import catalog


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "conductor.cli", *args],
                          capture_output=True, text=True, timeout=120)


async def test_api_coverage_reports_the_truth():
    proc = await asyncio.to_thread(_run, "api-coverage", "--missing")
    assert proc.returncode == 0
    done = len(load_all()) + len([f for f in catalog.FUNCTIONS if f.kind == "local"])
    assert proc.stdout.splitlines()[0].startswith(f"implemented: {done}/{len(catalog.FUNCTIONS)}")
    missing = [line.split()[-1] for line in proc.stdout.splitlines() if "missing:" in line]
    assert set(missing) == {f.name for f in catalog.remote_functions()} - set(load_all())


async def test_call_prints_json_and_errors(amqp_url, conductor, rpc_client, admin):
    topic = conductor.settings.topic
    made = await rpc_client.service_create(admin, {"host": "cli-host"})
    proc = await asyncio.to_thread(_run, "call", "service_get", str(made["id"]),
                                   "--amqp-url", amqp_url, "--topic", topic)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["host"] == "cli-host"
    proc = await asyncio.to_thread(_run, "call", "service_get", "424242",
                                   "--amqp-url", amqp_url, "--topic", topic)
    assert proc.returncode == 1 and "ServiceNotFound" in proc.stderr
    proc = await asyncio.to_thread(_run, "call", "service_get_all", "--user", "u",
                                   "--project", "p", "--amqp-url", amqp_url, "--topic", topic)
    assert proc.returncode == 1 and "AdminRequired" in proc.stderr
    proc = await asyncio.to_thread(_run, "call", "service_get", "--amqp-url", amqp_url,
                                   "--topic", topic)
    assert proc.returncode == 2 and "TypeError" in proc.stderr


async def test_db_sync_and_version(pg_base_url):
    from tests.conftest import _create_pg_database, _drop_pg_database

    url = await _create_pg_database(pg_base_url, "conductor_test_cli")
    try:
        proc = await asyncio.to_thread(_run, "db", "sync", "--db-url", url)
        assert proc.returncode == 0, proc.stderr
        proc = await asyncio.to_thread(_run, "db", "version", "--db-url", url)
        from conductor.db.migrate import head_revision

        assert f"current: {head_revision()}" in proc.stdout
    finally:
        await _drop_pg_database(pg_base_url, "conductor_test_cli")


async def test_retired_quorum_flag_says_what_to_do():
    proc = await asyncio.to_thread(_run, "serve", "--quorum-queues")
    assert proc.returncode == 2
    assert "--quorum-queues is retired" in proc.stderr and "--classic-queue" in proc.stderr


async def test_broker_and_topic_come_from_the_environment(amqp_url, conductor, rpc_client,
                                                         admin):
    made = await rpc_client.service_create(admin, {"host": "env-host"})
    env = dict(os.environ, CONDUCTOR_AMQP_URL=amqp_url,
               CONDUCTOR_TOPIC=conductor.settings.topic)
    proc = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "conductor.cli", "call", "service_get",
                         str(made["id"])], capture_output=True, text=True, timeout=120,
        env=env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["host"] == "env-host"
    # A flag wins over the environment.
    proc = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "conductor.cli", "call", "service_get",
                         str(made["id"]), "--topic", "nobody-listens", "--timeout", "5"],
        capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 1 and "NoConductor" in proc.stderr


async def test_strict_values_reaches_the_handlers(amqp_url, pg_url, admin):
    import uuid

    from client import ConductorClient
    from schemas import exceptions
    from tests.conftest import _delete_topic
    from tests.rpc.conftest import conductor_command

    topic = f"conductor-test-{uuid.uuid4().hex[:8]}"
    proc = subprocess.Popen(conductor_command(amqp_url, pg_url, topic, "--strict-values"))
    try:
        async with ConductorClient(amqp_url, topic=topic, timeout=30) as db:
            for _ in range(300):
                try:
                    await db.service_get_all(admin)
                    break
                except exceptions.NoConductor:
                    await asyncio.sleep(0.1)
            with pytest.raises(exceptions.InvalidInput, match="no column 'bogus'"):
                await db.service_create(admin, {"host": "strict", "bogus": 1})
    finally:
        proc.terminate()
        await asyncio.to_thread(proc.wait, 30)
        await _delete_topic(amqp_url, topic)
