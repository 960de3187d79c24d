"""The broker path over TLS: ``conductor serve`` on amqps:// with a CA and a password
file, a client logging in with its certificate (EXTERNAL), calls answered from
PostgreSQL; and what a refused certificate or password looks like, never showing it."""

from __future__ import annotations

import asyncio
import gc
import json
import secrets
import subprocess
import sys
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from client import ConductorClient
from schemas import exceptions
from schemas.context import get_admin_context
from tests.tls.conftest import CONDUCTOR_PASSWORD, TLSNode

START_WITHIN = 60.0
# aio-pika leaves a Connection.close() coroutine unawaited when a login or handshake is
# refused (a library's garbage, not ours); the tests that cause it collect it themselves.
refused_connection = pytest.mark.filterwarnings(
    "ignore::pytest.PytestUnraisableExceptionWarning")


def _forms(secret: str) -> list[str]:
    """The secret as written and as a URL or JSON would encode it."""
    return [secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote(secret),
            json.dumps(secret)[1:-1]]


def _assert_hidden(text: str, secret: str) -> None:
    for form in _forms(secret):
        assert form not in text


def _serve(node: TLSNode, pg_url: str, topic: str, password_file: str) -> list[str]:
    return [sys.executable, "-m", "conductor.cli", "serve",
            "--amqp-url", node.conductor_url, "--amqp-ca-file", node.ca_file,
            "--amqp-password-file", password_file, "--db-url", pg_url, "--topic", topic,
            "--log-level", "INFO"]


def _certificate_client(node: TLSNode, topic: str, ca_file: str) -> ConductorClient:
    return ConductorClient(node.url, topic=topic, timeout=10, ca_file=ca_file,
                           cert_file=node.client_cert, key_file=node.client_key,
                           external=True, user_id=node.client_name)


@pytest.fixture
def topic() -> str:
    return f"conductor-tls-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def wrong_password_file(tmp_path: Path) -> Iterator[tuple[str, str]]:
    password = "wrong-" + secrets.token_hex(6) + "%@:/"
    path = tmp_path / "wrong.password"
    path.write_text(password + "\n")
    yield str(path), password


async def _call_when_served(db: ConductorClient, server: subprocess.Popen[str],
                            output: Path) -> dict[str, object]:
    """service_create as soon as the conductor consumes the topic."""
    ctxt = get_admin_context()
    deadline = asyncio.get_running_loop().time() + START_WITHIN
    while True:
        try:
            return await db.service_create(ctxt, {"host": f"tls-{uuid.uuid4().hex[:6]}",
                                                  "topic": "compute"})
        except exceptions.NoConductor:
            if server.poll() is not None or asyncio.get_running_loop().time() > deadline:
                pytest.fail(f"the conductor did not serve {db.topic} (exit status "
                            f"{server.poll()}):\n{output.read_text()}")
            await asyncio.sleep(0.2)


async def test_the_fixture_starts_its_node_quickly(tls_node: TLSNode) -> None:
    assert tls_node.started_in < 20, f"the TLS node took {tls_node.started_in:.1f} s"


async def test_a_conductor_on_amqps_answers_a_client_logged_in_with_its_certificate(
        tls_node: TLSNode, pg_url: str, topic: str, tmp_path: Path) -> None:
    log = tmp_path / "conductor.log"
    with log.open("w") as out:
        server = subprocess.Popen(_serve(tls_node, pg_url, topic, tls_node.password_file),
                                  stdout=out, stderr=subprocess.STDOUT, text=True)
    try:
        # The broker checks each message's user_id against the connection's login, so
        # an answered call proves the login was the certificate's CN, over EXTERNAL.
        async with _certificate_client(tls_node, topic, tls_node.ca_file) as db:
            made = await _call_when_served(db, server, log)
            got = await db.service_get(get_admin_context(), made["id"])
        assert got["host"] == made["host"]
        # The same login from the command line.
        called = await asyncio.to_thread(subprocess.run, [
            sys.executable, "-m", "conductor.cli", "call", "service_get", str(made["id"]),
            "--amqp-url", tls_node.url, "--topic", topic,
            "--amqp-ca-file", tls_node.ca_file, "--amqp-cert-file", tls_node.client_cert,
            "--amqp-key-file", tls_node.client_key, "--amqp-auth", "external",
            "--broker-user", tls_node.client_name], capture_output=True, text=True,
            timeout=120)
        assert called.returncode == 0, called.stderr
        assert json.loads(called.stdout)["host"] == made["host"]
    finally:
        server.terminate()
        server.wait(timeout=60)
    output = log.read_text()
    assert server.returncode == 0, output
    assert f"on amqps://conductor:******@127.0.0.1:{tls_node.port}/?cafile=" in output
    _assert_hidden(output, CONDUCTOR_PASSWORD)


@refused_connection
async def test_a_client_that_does_not_trust_the_brokers_ca_fails_at_once(
        tls_node: TLSNode, topic: str) -> None:
    db = _certificate_client(tls_node, topic, tls_node.other_ca_file)
    with pytest.raises(exceptions.ConnectionLost) as raised:
        # Bounded: a refused certificate must be an error, not a wait for the timeout.
        await asyncio.wait_for(db.connect(), 10)
    gc.collect()
    assert "CERTIFICATE_VERIFY_FAILED" in str(raised.value)
    assert f"amqps://127.0.0.1:{tls_node.port}/" in str(raised.value)


@refused_connection
async def test_a_client_certificate_the_broker_does_not_know_is_refused(
        tls_node: TLSNode, topic: str) -> None:
    # Signed by the node's CA, so TLS accepts it, but its CN is no broker user.
    stranger = Path(tls_node.client_cert).with_name("stranger.pem")
    db = ConductorClient(tls_node.url, topic=topic, timeout=10, ca_file=tls_node.ca_file,
                         cert_file=str(stranger), key_file=str(stranger.with_suffix(".key")),
                         external=True, user_id="stranger")
    with pytest.raises(exceptions.ConnectionLost) as raised:
        await asyncio.wait_for(db.connect(), 10)
    gc.collect()
    assert "ACCESS_REFUSED" in str(raised.value)


async def test_a_wrong_password_stops_the_conductor_without_showing_it(
        tls_node: TLSNode, pg_url: str, topic: str,
        wrong_password_file: tuple[str, str]) -> None:
    path, password = wrong_password_file
    proc = await asyncio.to_thread(
        subprocess.run, _serve(tls_node, pg_url, topic, path), capture_output=True,
        text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "conductor: the broker at amqps://conductor:******@127.0.0.1" in proc.stderr
    assert "ACCESS_REFUSED" in proc.stderr
    _assert_hidden(proc.stdout + proc.stderr, password)


@refused_connection
async def test_a_client_with_a_wrong_password_is_told_without_it(
        tls_node: TLSNode, topic: str, wrong_password_file: tuple[str, str],
        caplog: pytest.LogCaptureFixture) -> None:
    _, password = wrong_password_file
    db = ConductorClient(tls_node.conductor_url, topic=topic, timeout=10,
                         ca_file=tls_node.ca_file, password=password)
    with pytest.raises(exceptions.ConnectionLost) as raised:
        await asyncio.wait_for(db.connect(), 10)
    gc.collect()
    text = f"{raised.value} {raised.value.__cause__!r} {caplog.text}"
    assert "ACCESS_REFUSED" in text
    _assert_hidden(text, password)


async def test_status_over_amqps_reports_without_passwords(
        tls_node: TLSNode, pg_url: str, wrong_password_file: tuple[str, str],
        tmp_path: Path) -> None:
    path, password = wrong_password_file
    db_password = "db-" + secrets.token_hex(6) + "%@:/"
    db_password_file = tmp_path / "db.password"
    db_password_file.write_text(db_password + "\n")
    # A database that refuses the login: a port nothing listens on, so trust auth on
    # the test server cannot accept any password.
    proc = await asyncio.to_thread(subprocess.run, [
        sys.executable, "-m", "conductor.cli", "status", "--json",
        "--amqp-url", tls_node.conductor_url, "--amqp-ca-file", tls_node.ca_file,
        "--amqp-password-file", path, "--db-url", "postgresql://conductor@127.0.0.1:9/x",
        "--db-password-file", str(db_password_file), "--log-level", "DEBUG"],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    assert "ACCESS_REFUSED" in report["broker_error"]
    assert "database_error" in report
    for secret in (password, db_password):
        _assert_hidden(proc.stdout + proc.stderr, secret)
