"""A caller installs only the client: no SQLAlchemy, asyncpg or Alembic, and calls work."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVER_ONLY = ("sqlalchemy", "asyncpg", "aiosqlite", "alembic", "regex")

CALLER = """
import asyncio, json, sys
from client import ConductorClient
from schemas import exceptions
from schemas.context import get_admin_context

async def main():
    async with ConductorClient(sys.argv[1], topic=sys.argv[2], timeout=30) as db:
        ctxt = get_admin_context()
        made = await db.service_create(ctxt, {"host": "client-only-node"})
        got = await db.service_get(ctxt, made["id"])
        try:
            await db.service_get(ctxt, 424242)
        except exceptions.ServiceNotFound as exc:
            missing = type(exc).__name__
    print(json.dumps({"host": got["host"], "missing": missing,
                      "server_modules": [m for m in sys.argv[3].split(",") if m in sys.modules]}))

asyncio.run(main())
"""


def test_client_and_schemas_import_without_server_modules() -> None:
    code = ("import sys, client, schemas.catalog, schemas.codec, schemas.envelope, "
            "schemas.context, schemas.exceptions, schemas.conditions; "
            f"print([m for m in {SERVER_ONLY!r} if m in sys.modules])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


@pytest.fixture(scope="module")
def client_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with `pip install <the repository>`: the base install alone."""
    base = tmp_path_factory.mktemp("client-only")
    # Build from a copy: an in-tree build would leave build/ and egg-info in the checkout.
    src = base / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for package in ("schemas", "client", "conductor"):
        shutil.copytree(ROOT / package, src / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    env_dir = base / "venv"
    venv.create(env_dir, with_pip=True)
    proc = subprocess.run([str(env_dir / "bin" / "pip"), "install", "-q", str(src)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return env_dir


def test_base_install_has_no_server_dependencies(client_venv: Path) -> None:
    for module in SERVER_ONLY:
        proc = subprocess.run([str(client_venv / "bin" / "python"), "-c", f"import {module}"],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode != 0 and "ModuleNotFoundError" in proc.stderr, module


def test_conductor_command_names_the_server_extra(client_venv: Path) -> None:
    proc = subprocess.run([str(client_venv / "bin" / "conductor"), "serve"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "pip install 'conductor[server]'" in proc.stderr
    assert "Traceback" not in proc.stderr


async def test_a_real_call_through_the_client_only_install(client_venv: Path, amqp_url: str,
                                                           conductor) -> None:
    proc = await asyncio.to_thread(
        subprocess.run, [str(client_venv / "bin" / "python"), "-c", CALLER, amqp_url,
                         conductor.settings.topic, ",".join(SERVER_ONLY)],
        capture_output=True, text=True, timeout=120, cwd=client_venv)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"host": "client-only-node",
                                       "missing": "ServiceNotFound", "server_modules": []}
