"""Several broker URLs: a node that does not answer is passed over, by the client, the
conductor and the command line alike (the failover under load is tests/cluster/)."""

import asyncio
import json
import os
import subprocess
import sys
import uuid

import pytest
import yarl

from client import ConductorClient
from client.urls import broker_urls
from conductor.app import Conductor
from conductor.settings import Settings, from_sources
from tests.conftest import _delete_topic

# Nothing listens on port 1: connecting is refused at once.
DEAD = "amqp://guest:guest@127.0.0.1:1/"


def test_urls_come_as_a_list_or_separated_by_commas():
    assert broker_urls("amqp://a/") == ["amqp://a/"]
    assert broker_urls("amqp://a/, amqp://b/,") == ["amqp://a/", "amqp://b/"]
    assert broker_urls(["amqp://a/", "amqp://b/,amqp://c/"]) == \
        ["amqp://a/", "amqp://b/", "amqp://c/"]
    with pytest.raises(ValueError):
        broker_urls(" , ")


def test_a_password_from_the_environment_goes_into_every_url_commas_and_all():
    settings = from_sources({"amqp_url": "amqp://u@a/,amqp://u@b/"},
                            environ={"CONDUCTOR_AMQP_PASSWORD": "x,y"})
    urls = broker_urls(settings.amqp_url)
    assert [yarl.URL(u).host for u in urls] == ["a", "b"]
    assert [yarl.URL(u).password for u in urls] == ["x,y", "x,y"]
    assert settings.secrets() == ["x,y", "x,y"]


def test_urls_logging_in_as_different_users_need_an_explicit_user_id():
    with pytest.raises(ValueError, match="user_id"):
        ConductorClient(["amqp://alice:x@a/", "amqp://bob:y@b/"])
    assert ConductorClient(["amqp://alice:x@a/", "amqp://alice:z@b/"]).user_id == "alice"


async def test_the_client_passes_over_a_node_that_does_not_answer(amqp_url, conductor, admin):
    async with ConductorClient([DEAD, amqp_url], topic=conductor.settings.topic,
                               timeout=30) as db:
        made = await db.service_create(admin, {"host": "failover-host"})
        assert (await db.service_get(admin, made["id"]))["host"] == "failover-host"


async def test_the_conductor_passes_over_a_node_that_does_not_answer(amqp_url, pg_engine,
                                                                     admin):
    topic = f"conductor-test-{uuid.uuid4().hex[:8]}"
    running = Conductor(Settings(amqp_url=f"{DEAD},{amqp_url}", topic=topic), pg_engine)
    await running.start()
    try:
        async with ConductorClient(amqp_url, topic=topic, timeout=30) as db:
            made = await db.service_create(admin, {"host": "conductor-failover"})
            assert made["host"] == "conductor-failover"
    finally:
        await running.stop()
        await _delete_topic(amqp_url, topic)


async def test_the_command_line_takes_the_flag_per_node_or_a_list(amqp_url, conductor,
                                                                  rpc_client, admin):
    made = await rpc_client.service_create(admin, {"host": "cli-failover"})
    topic = conductor.settings.topic
    for args, env in (
            (["--amqp-url", DEAD, "--amqp-url", amqp_url], {}),
            ([], {"CONDUCTOR_AMQP_URL": f"{DEAD},{amqp_url}"})):
        proc = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "conductor.cli", "call", "service_get",
                             str(made["id"]), "--topic", topic, *args],
            capture_output=True, text=True, timeout=120, env={**os.environ, **env})
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["host"] == "cli-failover"
