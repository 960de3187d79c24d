"""deploy/rabbitmq/users.sh, compose's init service, run as-is against the tests' node:
the users deploy/policy.toml names exist with their secrets' passwords and permissions."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import tomllib
import uuid
from pathlib import Path

import pytest

from client import ConductorClient
from schemas import exceptions
from schemas.context import get_admin_context
from tests.tls.conftest import CONDUCTOR_PASSWORD, TLSNode

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "rabbitmq" / "users.sh"


def test_compose_makes_every_user_the_policy_names_with_a_secret_of_its_own() -> None:
    policy = tomllib.loads((ROOT / "deploy" / "policy.toml").read_text())
    named = set(policy["users"]) - {"*"}
    made = set(re.findall(r"^user (\w+) ", SCRIPT.read_text(), re.MULTILINE))
    assert named <= made and "conductor" in made
    compose = (ROOT / "compose.yaml").read_text()
    for user in made:
        assert f"amqp_{user}_password: {{file: ./deploy/secrets/amqp_{user}_password}}" \
            in compose
    # No password is written in the compose file: the services read secrets' files.
    assert "guest" not in compose and "POSTGRES_PASSWORD:" not in compose


async def test_users_script_creates_the_policys_users_with_their_secrets(
        tls_node: TLSNode, tmp_path: Path) -> None:
    if shutil.which("rabbitmqctl") is None:
        pytest.skip("rabbitmqctl is not installed")
    # The node's conductor user keeps its password: the other TLS tests log in with it.
    passwords = {"conductor": CONDUCTOR_PASSWORD,
                 **{name: f"{name}-{uuid.uuid4().hex}" for name in ("compute", "operator")}}
    for name, password in passwords.items():
        (tmp_path / f"amqp_{name}_password").write_text(password + "\n")
    node_dir = Path(tls_node.ca_file).parent
    env = {"PATH": "/usr/sbin:/usr/bin:/bin", "HOME": str(node_dir),
           "RABBITMQ_NODE": f"conductor-tls-{tls_node.port}@localhost",
           "RABBITMQ_COOKIE_FILE": str(node_dir / ".erlang.cookie"),
           "SECRETS_DIR": str(tmp_path)}
    proc = await asyncio.to_thread(subprocess.run, ["sh", str(SCRIPT)], env=env,
                                   capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count(": ready") == 3
    for password in passwords.values():
        assert password not in proc.stdout + proc.stderr

    # A compute node logs in with its secret and may publish calls (nobody serves this
    # topic, so the broker returns it unroutable rather than refusing the publish).
    topic = f"conductor-users-{uuid.uuid4().hex[:8]}"
    async with ConductorClient(f"amqps://compute@127.0.0.1:{tls_node.port}/", topic=topic,
                               timeout=10, ca_file=tls_node.ca_file,
                               password=passwords["compute"]) as db:
        with pytest.raises(exceptions.NoConductor):
            await db.service_get_all(get_admin_context())
