"""A RabbitMQ node of the tests' own with a TLS listener, and a certificate authority.

The fixture makes a CA, a server certificate for 127.0.0.1 and a client certificate (the
``openssl`` command), writes the node's config file, enabled-plugins file and
definitions (the users, loaded at boot: no ``rabbitmqctl`` round trips), and starts one
node on a port in 5700-5709 (Erlang distribution on 25700-25709), as the ``rabbitmq``
user when run as root.  The node shares nothing with the machine's broker but epmd: its
own name, cookie, data, logs and plugin directory, all removed at teardown.  Where
RabbitMQ's server or openssl is not installed, the tests are skipped, saying so.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aio_pika
import pytest

from client.urls import broker_url

PORTS = range(5700, 5710)
DIST_PORT_OFFSET = 20000
START_TIMEOUT = 60.0
CONDUCTOR_USER = "conductor"
# Characters a URL treats specially: it must reach the broker intact and never be shown.
CONDUCTOR_PASSWORD = "tls-" + secrets.token_hex(8) + "%@:/?&#"


@dataclass(frozen=True)
class TLSNode:
    port: int
    ca_file: str  # the CA that signed the node's and the client's certificates
    client_cert: str
    client_key: str
    client_name: str  # the client certificate's CN: its EXTERNAL login
    other_ca_file: str  # a CA that signed nothing here
    password_file: str  # the conductor user's password, first line
    started_in: float  # seconds from start to the first login

    @property
    def url(self) -> str:
        return f"amqps://127.0.0.1:{self.port}/"

    @property
    def conductor_url(self) -> str:
        return f"amqps://{CONDUCTOR_USER}@127.0.0.1:{self.port}/"


def _server_command() -> list[str]:
    found = shutil.which("rabbitmq-server",
                         path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin",
                                               "/usr/lib/rabbitmq/bin"]))
    if found is None:
        pytest.skip("RabbitMQ's server (rabbitmq-server) is not installed: the TLS tests "
                    "start a broker node of their own")
    real = Path(found).resolve()
    # Debian's wrapper logs to the system broker's files and drops the environment:
    # the script beside it is the real one.
    if real.name == "rabbitmq-script-wrapper":
        real = real.with_name("rabbitmq-server")
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: the TLS tests make their certificates with it")
    if os.geteuid() != 0:
        return [str(real)]
    try:
        pwd.getpwnam("rabbitmq")
    except KeyError:
        pytest.skip("running as root and there is no rabbitmq user to start the node as")
    return ["setpriv", "--reuid=rabbitmq", "--regid=rabbitmq", "--init-groups", str(real)]


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    for port in PORTS:
        if _bindable(port) and _bindable(port + DIST_PORT_OFFSET):
            return port
    pytest.fail(f"no free port for the TLS node in {PORTS.start}-{PORTS.stop - 1}")


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


def _make_certificates(d: Path, client_name: str) -> None:
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for ca in ("ca", "other-ca"):
        _openssl("req", "-x509", *ec, "-keyout", f"{ca}.key", "-out", f"{ca}.pem",
                 "-days", "2", "-subj", f"/CN=conductor test {ca}", cwd=d)
    for name, subject, ext in (
            ("server", "localhost", "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                                    "extendedKeyUsage=serverAuth\n"),
            ("client", client_name, "extendedKeyUsage=clientAuth\n"),
            ("stranger", "stranger", "extendedKeyUsage=clientAuth\n")):
        (d / f"{name}.ext").write_text(ext)
        _openssl("req", "-new", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN={subject}", cwd=d)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext",
                 "-out", f"{name}.pem", cwd=d)


def password_hash(password: str) -> str:
    """RabbitMQ's rabbit_password_hashing_sha256: base64(salt + sha256(salt + password))."""
    salt = secrets.token_bytes(4)
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def _write_node_files(d: Path, port: int, client_name: str) -> None:
    (d / "rabbitmq.conf").write_text("\n".join([
        "listeners.tcp = none",
        f"listeners.ssl.1 = 127.0.0.1:{port}",
        f"ssl_options.cacertfile = {d / 'ca.pem'}",
        f"ssl_options.certfile = {d / 'server.pem'}",
        f"ssl_options.keyfile = {d / 'server.key'}",
        "ssl_options.verify = verify_peer",
        "ssl_options.fail_if_no_peer_cert = false",
        "auth_mechanisms.1 = PLAIN",
        "auth_mechanisms.2 = EXTERNAL",
        "ssl_cert_login_from = common_name",
        f"load_definitions = {d / 'definitions.json'}",
        ""]))
    (d / "enabled_plugins").write_text("[rabbitmq_auth_mechanism_ssl].\n")
    # What deploy/rabbitmq/users.sh grants: a conductor its topic's queues and exchanges,
    # a compute node publishing to the default exchange only.
    conductor = {"vhost": "/", "configure": "^conductor.*",
                 "write": "^(conductor.*|amq\\.default)$", "read": "^conductor.*"}
    compute = {"vhost": "/", "configure": "^$", "write": "^amq\\.default$", "read": "^$"}
    (d / "definitions.json").write_text(json.dumps({
        "users": [
            {"name": CONDUCTOR_USER, "password_hash": password_hash(CONDUCTOR_PASSWORD),
             "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": []},
            # No password: this user logs in with its certificate only.
            {"name": client_name, "password_hash": "",
             "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": []}],
        "vhosts": [{"name": "/"}],
        "permissions": [{"user": CONDUCTOR_USER, **conductor},
                        {"user": client_name, **compute}]}))
    (d / "conductor.password").write_text(CONDUCTOR_PASSWORD + "\n")
    (d / ".erlang.cookie").write_text(secrets.token_hex(16))
    (d / ".erlang.cookie").chmod(0o400)
    (d / "rabbitmq-env.conf").write_text("")  # not the machine's (its NODENAME, ...)


def _node_environment(d: Path, port: int) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(d),
        "LANG": "C.UTF-8",
        "RABBITMQ_NODENAME": f"conductor-tls-{port}@localhost",
        "RABBITMQ_CONF_ENV_FILE": str(d / "rabbitmq-env.conf"),
        "RABBITMQ_CONFIG_FILE": str(d / "rabbitmq.conf"),
        "RABBITMQ_ADVANCED_CONFIG_FILE": str(d / "advanced.config"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(d / "enabled_plugins"),
        "RABBITMQ_MNESIA_BASE": str(d / "mnesia"),
        "RABBITMQ_LOG_BASE": str(d / "log"),
        "RABBITMQ_PLUGINS_EXPAND_DIR": str(d / "plugins-expand"),
        "RABBITMQ_PID_FILE": str(d / "node.pid"),
        "RABBITMQ_DIST_PORT": str(port + DIST_PORT_OFFSET),
        "ERL_EPMD_ADDRESS": "127.0.0.1",
    }


def _log_tail(d: Path) -> str:
    text = ""
    for path in sorted((d / "log").glob("*.log")) + [d / "console.out"]:
        with contextlib.suppress(OSError):
            text += f"--- {path.name}\n" + path.read_text(errors="replace")[-3000:]
    return text


async def _wait_for_login(node: TLSNode, proc: subprocess.Popen[bytes], d: Path) -> None:
    url = broker_url(node.conductor_url, password=CONDUCTOR_PASSWORD, ca_file=node.ca_file)
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if proc.poll() is not None:
            pytest.fail(f"the TLS broker node exited ({proc.returncode}):\n{_log_tail(d)}")
        try:
            connection = await aio_pika.connect(url, timeout=2)
        except Exception:
            if time.monotonic() > deadline:
                pytest.fail(f"the TLS broker node did not accept a login within "
                            f"{START_TIMEOUT:.0f} s:\n{_log_tail(d)}")
            await asyncio.sleep(0.2)
            continue
        await connection.close()
        return


@pytest.fixture(scope="session")
def _node_dir() -> Iterator[Path]:
    # Not under pytest's tmp_path: that is private to this user, and the node runs as
    # the rabbitmq user.
    d = Path(tempfile.mkdtemp(prefix="conductor-tls-"))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
async def tls_node(_node_dir: Path) -> AsyncIterator[TLSNode]:
    command = _server_command()
    d = _node_dir
    port = _free_port()
    client_name = f"compute-{secrets.token_hex(3)}"
    started = time.monotonic()
    _make_certificates(d, client_name)
    _write_node_files(d, port, client_name)
    if command[0] == "setpriv":
        rabbitmq = pwd.getpwnam("rabbitmq")
        for path in [d, *d.rglob("*")]:
            os.chown(path, rabbitmq.pw_uid, rabbitmq.pw_gid)
    node = TLSNode(port=port, ca_file=str(d / "ca.pem"), client_cert=str(d / "client.pem"),
                   client_key=str(d / "client.key"), client_name=client_name,
                   other_ca_file=str(d / "other-ca.pem"),
                   password_file=str(d / "conductor.password"), started_in=0.0)
    with open(d / "console.out", "wb") as console:
        proc = subprocess.Popen(command, env=_node_environment(d, port), cwd=d,
                                stdout=console, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        await _wait_for_login(node, proc, d)
        node = TLSNode(**{**node.__dict__, "started_in": time.monotonic() - started})
        yield node
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM: the script stops the node gracefully; then the whole group, if need be."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
