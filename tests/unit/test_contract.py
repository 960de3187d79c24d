"""The AsyncAPI document: checked in, complete, and valid against the official schema."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from conductor import contract
from schemas import catalog, codec

EXPORTED = Path(__file__).resolve().parents[2] / "schemas" / "asyncapi.json"
# The AsyncAPI Initiative's own package of its JSON schemas (npm: @asyncapi/specs). No
# PyPI package ships the 3.0.0 schema, so the test takes it from there, pinned.
SPECS_PACKAGE = "@asyncapi/specs@6.11.1"


def test_checked_in_document_is_what_export_writes(tmp_path: Path) -> None:
    out = tmp_path / "asyncapi.json"
    proc = subprocess.run([sys.executable, "-m", "conductor.cli", "schema", "export",
                           "--output", str(out)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert out.read_text() == contract.export()
    assert EXPORTED.read_text() == out.read_text(), (
        "schemas/asyncapi.json is stale: run `conductor schema export -o "
        "schemas/asyncapi.json` and commit it")


def test_every_function_is_a_message_with_its_catalog_entry() -> None:
    doc = contract.build()
    messages = doc["components"]["messages"]
    for func in catalog.remote_functions():
        msg = messages[func.name]
        assert (msg["x-kind"], msg["x-access"], msg["x-version"]) == \
            (func.kind, func.access, func.version)
        kwargs = msg["payload"]["properties"]["kwargs"]["properties"]
        named = [p for p in func.params[1:] if not p.var]
        assert list(kwargs) == [p.name for p in named]
        for p in named:
            assert kwargs[p.name].get("default", catalog.REQUIRED) == p.default
    local = [f.name for f in catalog.FUNCTIONS if f.kind == "local"]
    assert local and not set(local) & set(messages)  # they never travel


def test_defaults_access_and_raises_as_a_caller_reads_them() -> None:
    messages = contract.build()["components"]["messages"]
    get_all = messages["database_snapshot_get_all"]["payload"]["properties"]
    assert get_all["kwargs"]["properties"]["sort_key"]["default"] == "create_time"
    assert [i["title"] for i in get_all["args"]["items"]] == \
        ["filters", "sort_key", "sort_dir", "limit", "marker"]
    assert "AdminRequired" in messages["database_snapshot_create"]["x-raises"]
    assert "AdminRequired" not in messages["database_snapshot_get"]["x-raises"]
    assert "RPCTimeout" in messages["database_snapshot_get"]["x-client-raises"]


def test_extension_types_and_exceptions_are_all_described() -> None:
    doc = contract.build()
    codes = {v for k, v in vars(codec).items() if k.startswith("EXT_")}
    assert {int(c) for c in doc["x-msgpack-extensions"]} == codes
    assert doc["x-msgpack-extensions"][str(codec.EXT_DATETIME)]["name"] == "datetime"
    raised = {name for m in doc["components"]["messages"].values()
              for name in m.get("x-raises", [])}
    assert raised <= set(doc["x-exceptions"])
    assert doc["x-exceptions"]["InstanceNotFound"]["parent"] == "NotFound"


def test_topic_is_a_parameter() -> None:
    doc = json.loads(contract.export(topic="nova-db"))
    assert doc["channels"]["topic"]["parameters"]["topic"]["default"] == "nova-db"


@pytest.fixture(scope="module")
def official_schema(request: pytest.FixtureRequest) -> dict[str, Any]:
    cache = Path(request.config.cache.mkdir("asyncapi-specs"))
    path = cache / "package" / "schemas" / "3.0.0.json"
    if not path.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip(f"npm is needed once to fetch {SPECS_PACKAGE} (the official schema)")
        proc = subprocess.run([npm, "pack", SPECS_PACKAGE, "--pack-destination", str(cache)],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, f"npm pack {SPECS_PACKAGE} failed: {proc.stderr}"
        with tarfile.open(cache / proc.stdout.split()[-1]) as tar:
            tar.extractall(cache, filter="data")
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def test_document_is_valid_asyncapi_3(official_schema: dict[str, Any]) -> None:
    validator = jsonschema.Draft7Validator(official_schema)
    doc = json.loads(EXPORTED.read_text())
    errors = [f"{list(e.absolute_path)}: {e.message[:200]}"
              for e in validator.iter_errors(doc)]
    assert errors == []
    # The validator has teeth: a broken operation is refused.
    broken = copy.deepcopy(doc)
    broken["operations"]["call"]["action"] = "consume"
    assert not validator.is_valid(broken)
