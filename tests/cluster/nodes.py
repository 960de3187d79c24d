"""A three-node RabbitMQ cluster on this machine, started and stopped by the tests.

Each node has its own name, AMQP and distribution ports, config file and data, log and
plugin directories under one temporary directory; nodes 2 and 3 join node 1 at boot
(classic config peer discovery), so nothing is restarted to form the cluster.  Every
node runs in a process group of its own, killed at the end whatever happened, so no
Erlang process outlives the fixture.  Needs RabbitMQ's server installed (its
``rabbitmq-server`` and ``rabbitmqctl``); :func:`missing` says what is not.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

# The ports this fixture may use: three consecutive free AMQP ports from this range, the
# distribution port of each is the AMQP port + DIST_OFFSET.
AMQP_PORTS = range(5710, 5730)
DIST_OFFSET = 20000
START_TIMEOUT = 40.0
# The Debian/Ubuntu package's real scripts; /usr/sbin's wrappers redirect output and
# switch users themselves.
_PACKAGED_BIN = Path("/usr/lib/rabbitmq/bin")


def _script(name: str) -> str | None:
    packaged = _PACKAGED_BIN / name
    if packaged.is_file():
        return str(packaged)
    return shutil.which(name)


def _run_as() -> str | None:
    """The user the nodes run as: rabbitmq when we are root (RabbitMQ refuses nothing as
    root, but its files are meant to be the rabbitmq user's), else ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("rabbitmq")
    except KeyError:
        return None
    return "rabbitmq"


def missing() -> str | None:
    """Why a local cluster cannot be started here, or None if it can."""
    for name in ("rabbitmq-server", "rabbitmqctl"):
        if _script(name) is None:
            return (f"RabbitMQ's server is not installed ({name} not found): the cluster "
                    f"tests start three local nodes and need it (apt install "
                    f"rabbitmq-server, brew install rabbitmq, ...)")
    if _run_as() is not None and shutil.which("runuser") is None:
        return "running as root, the cluster tests start nodes with runuser, not found"
    return None


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        # As the broker binds: a port left in TIME_WAIT by a node just stopped is free.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_ports(count: int) -> list[int]:
    ports = list(AMQP_PORTS)
    for i in range(len(ports) - count + 1):
        chosen = ports[i:i + count]
        if all(_port_free(p) and _port_free(p + DIST_OFFSET) for p in chosen):
            return chosen
    raise RuntimeError(f"no {count} free AMQP ports in {AMQP_PORTS.start}-"
                       f"{AMQP_PORTS.stop - 1} (with their distribution ports)")


def _descendants(pid: int) -> list[int]:
    """The processes below ``pid`` (from /proc; none where there is no /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = entry.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.parent.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _running(pid: int) -> bool:
    """``pid`` exists and is not a zombie waiting for its parent."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@dataclass
class Node:
    name: str
    port: int
    base: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    @property
    def pid_file(self) -> Path:
        return self.base / "pid"

    @property
    def log_file(self) -> Path:
        return self.base / "log" / f"{self.name}.log"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class Cluster:
    def __init__(self, size: int = 3) -> None:
        self.cookie = secrets.token_hex(16)
        self.root = Path(tempfile.mkdtemp(prefix="conductor-cluster-"))
        self.user = _run_as()
        ports = _free_ports(size)
        # Names carry the port: two runs on one machine never share a node name.
        self.nodes = [Node(f"conductor-test-{p}@localhost", p, self.root / str(p))
                      for p in ports]

    @property
    def urls(self) -> list[str]:
        return [n.url for n in self.nodes]

    # -- start and stop ---------------------------------------------------------------------

    def start(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT  # for the whole cluster
        try:
            first, *rest = self.nodes
            self._launch(first, seed=None)
            self.wait_started(first, deadline)
            for node in rest:
                self._launch(node, seed=first)
            for node in rest:
                self.wait_started(node, deadline)
            self._wait_members(deadline)
        except BaseException:
            self.stop()
            raise

    def _launch(self, node: Node, seed: Node | None) -> None:
        for sub in ("data", "log", "plugins", "config"):
            (node.base / sub).mkdir(parents=True, exist_ok=True)
        config = [f"listeners.tcp.local = 127.0.0.1:{node.port}",
                  "loopback_users = none",
                  # A cluster of three on a loaded test machine: the fixture never
                  # pauses a node, and a kill -9 is noticed by the lost connection.
                  "cluster_partition_handling = ignore"]
        if seed is not None:
            config += ["cluster_formation.peer_discovery_backend = classic_config",
                       f"cluster_formation.classic_config.nodes.1 = {seed.name}"]
        conf = node.base / "config" / "rabbitmq.conf"
        conf.write_text("\n".join(config) + "\n")
        (node.base / "config" / "enabled_plugins").write_text("[].\n")
        (node.base / "config" / "rabbitmq-env.conf").write_text("")
        if self.user is not None:
            subprocess.run(["chown", "-R", f"{self.user}:", str(self.root)], check=True)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(node.base),
            "LANG": "C.UTF-8",
            "RABBITMQ_NODENAME": node.name,
            "RABBITMQ_NODE_PORT": str(node.port),
            "RABBITMQ_DIST_PORT": str(node.port + DIST_OFFSET),
            "RABBITMQ_CONFIG_FILE": str(conf),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(node.base / "config" / "advanced.config"),
            "RABBITMQ_CONF_ENV_FILE": str(node.base / "config" / "rabbitmq-env.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(node.base / "config" / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(node.base / "data"),
            "RABBITMQ_MNESIA_DIR": str(node.base / "data" / node.name),
            "RABBITMQ_LOG_BASE": str(node.base / "log"),
            "RABBITMQ_PLUGINS_EXPAND_DIR": str(node.base / "plugins"),
            "RABBITMQ_PID_FILE": str(node.pid_file),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS":
                f"-setcookie {self.cookie} -kernel inet_dist_use_interface {{127,0,0,1}}",
        }
        command = [_script("rabbitmq-server") or "rabbitmq-server"]
        if self.user is not None:
            command = ["runuser", "-u", self.user, "--", *command]
        out = open(node.base / "stdout", "wb")  # noqa: SIM115 - the node writes to it
        with out:
            # A process group of its own: stop() kills whatever the node started.
            node.proc = subprocess.Popen(command, env=env, stdout=out,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True, cwd=node.base)

    def ctl(self, node: Node, *args: str, timeout: float = 30.0,
            check: bool = True) -> str:
        command = [_script("rabbitmqctl") or "rabbitmqctl", "--erlang-cookie", self.cookie,
                   "-n", node.name, "-q", *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, "ERL_EPMD_ADDRESS": "127.0.0.1"})
        if check and done.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)} on {node.name}: "
                               f"{done.stderr.strip() or done.stdout.strip()}")
        return done.stdout

    def wait_started(self, node: Node, deadline: float) -> None:
        while True:
            if not node.alive():
                raise RuntimeError(f"{node.name} exited at start-up:\n{self.tail(node)}")
            with socket.socket() as s:
                s.settimeout(1)
                if s.connect_ex(("127.0.0.1", node.port)) == 0:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{node.name} did not listen on {node.port} within "
                                   f"{START_TIMEOUT:.0f} s:\n{self.tail(node)}")
            time.sleep(0.2)

    def _wait_members(self, deadline: float) -> None:
        names = {n.name for n in self.nodes}
        while True:
            status = self.ctl(self.nodes[0], "eval", "rabbit_nodes:all_running().")
            if all(name in status for name in names):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the nodes did not form one cluster: {status}")
            time.sleep(0.3)

    def tail(self, node: Node, lines: int = 30) -> str:
        text = ""
        for path in (node.base / "stdout", node.log_file):
            if path.exists():
                text += "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        return text

    def kill(self, node: Node) -> None:
        """``kill -9`` of the node's Erlang VM: no goodbye to its peers or clients."""
        pid = int(node.pid_file.read_text().split()[0])
        os.kill(pid, signal.SIGKILL)

    def stop(self) -> None:
        """Kill every node and what it started (its port helpers start sessions of their
        own, so the process group is not enough: the whole tree is), remove its files."""
        killed: list[int] = []
        for node in self.nodes:
            proc = node.proc
            if proc is None:
                continue
            tree = [proc.pid, *_descendants(proc.pid)]
            for pid in tree:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=10)
            killed += tree
        # Gone, not just signalled: the next test run reuses the ports and names.
        deadline = time.monotonic() + 10
        while any(_running(pid) for pid in killed) and time.monotonic() < deadline:
            time.sleep(0.1)
        shutil.rmtree(self.root, ignore_errors=True)

    # -- queries ----------------------------------------------------------------------------

    def node_named(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    def leader(self, queue: str) -> Node:
        """The node leading quorum queue ``queue`` (asked of a running node)."""
        asked = next(n for n in self.nodes if n.alive())
        for line in self.ctl(asked, "list_queues", "name", "leader",
                             "--no-table-headers").splitlines():
            name, _, leader = line.partition("\t")
            if name == queue and leader.strip():
                return self.node_named(leader.strip())
        raise LookupError(f"no leader listed for {queue}")
