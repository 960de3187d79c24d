"""The client's generated methods, its options and its local refusals (no broker needed)."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

import pytest

from client import BlockingConductorClient, ConductorClient
from client.core import broker_login
from client.jobs import JobQueue
from schemas import catalog, exceptions
from schemas.context import RequestContext, get_admin_context
from tools import generate_client

ADMIN = get_admin_context()


def test_generated_methods_match_the_catalog():
    on_disk = Path(generate_client.TARGET).read_text(encoding="utf-8")
    assert on_disk == generate_client.render(), \
        "client/_api.py drifted from the catalog: run python -m tools.generate_client"


def test_a_catalog_change_changes_the_generated_text(monkeypatch):
    # The drift check above only means something if the text follows the catalog.
    func = catalog.BY_NAME["service_get"]
    changed = dataclasses.replace(func, version="1.1")
    monkeypatch.setattr(catalog, "FUNCTIONS", tuple(
        changed if f is func else f for f in catalog.FUNCTIONS))
    assert "service_get(context, service_id)``: a read, admin context only, protocol 1.1" \
        in generate_client.render()


def test_methods_show_novas_parameters_and_a_docstring():
    sig = inspect.signature(ConductorClient.instance_get_all_by_filters)
    assert [(p.name, p.default) for p in sig.parameters.values()][1:] == [
        ("context", inspect.Parameter.empty), ("filters", inspect.Parameter.empty),
        ("sort_key", "created_at"), ("sort_dir", "desc"), ("limit", None), ("marker", None)]
    assert inspect.iscoroutinefunction(ConductorClient.instance_get_by_uuid)
    assert not inspect.iscoroutinefunction(BlockingConductorClient.instance_get_by_uuid)
    assert "instance_get_by_uuid(context, uuid)" in ConductorClient.instance_get_by_uuid.__doc__
    assert "admin or user context" in BlockingConductorClient.instance_get_by_uuid.__doc__
    remote = {f.name for f in catalog.remote_functions()}
    assert len(remote) == catalog.NOVA_FUNCTION_COUNT - 3 + 8  # less the 3 local helpers
    assert remote <= set(dir(ConductorClient)) and remote <= set(dir(BlockingConductorClient))


def test_a_wrong_call_raises_type_error_before_anything_is_sent():
    db = ConductorClient("amqp://nobody@127.0.0.1:1/")  # never connects
    with pytest.raises(TypeError):
        db.instance_get_by_uuid(ADMIN)  # missing uuid: raised by the call itself
    with pytest.raises(TypeError):
        db.instance_get_by_uuid(ADMIN, "u", "extra")


async def test_call_by_name_binds_and_checks_the_context():
    db = ConductorClient("amqp://nobody@127.0.0.1:1/")
    with pytest.raises(TypeError):
        await db.call("instance_get_by_uuid", ADMIN, uuid="u", nope=1)
    with pytest.raises(TypeError, match="context must be a RequestContext"):
        await db.call("instance_get_by_uuid", {"is_admin": True}, "u")
    with pytest.raises(AttributeError, match="no function 'drop_everything'"):
        await db.call("drop_everything", ADMIN)
    with pytest.raises(AttributeError):
        await db.call("equal_any", ADMIN)  # local helpers never travel


@pytest.mark.parametrize(("url", "login"), [
    ("amqp://guest:guest@localhost:5672/", "guest"),
    ("amqp://compute%2D1:secret@broker.example/nova", "compute-1"),
    ("amqp://broker.example/", "guest"),
])
def test_user_id_defaults_to_the_urls_login(url, login):
    assert broker_login(url) == login
    assert ConductorClient(url).user_id == login
    assert ConductorClient(url, user_id="ops").user_id == "ops"


def test_a_certificate_login_needs_an_explicit_user_id(tmp_path):
    cert = tmp_path / "client.pem"
    cert.write_text("")
    url = f"amqps://broker.example:5671/?auth=external&certfile={cert}"
    with pytest.raises(ValueError, match="pass user_id="):
        ConductorClient(url)
    with pytest.raises(ValueError, match="pass user_id="):
        BlockingConductorClient(url)
    assert ConductorClient(url, user_id="CN=compute-1").user_id == "CN=compute-1"
    with pytest.raises(ValueError, match="non-empty"):
        ConductorClient(user_id="")


@pytest.fixture
def service_get_is_newer(monkeypatch):
    """``service_get`` as if it had been added in protocol 1.1."""
    func = dataclasses.replace(catalog.BY_NAME["service_get"], version="1.1")
    monkeypatch.setitem(catalog.BY_NAME, "service_get", func)
    monkeypatch.setitem(catalog.BY_NAME, "service_update",
                        dataclasses.replace(catalog.BY_NAME["service_update"], version="1.1"))


async def test_version_cap_refuses_a_newer_function_locally(service_get_is_newer):
    db = ConductorClient("amqp://nobody@127.0.0.1:1/", version_cap="1.0")  # never connects
    with pytest.raises(exceptions.VersionCapExceeded) as info:
        await db.service_get(ADMIN, 1)
    assert info.value.kwargs == {"method": "service_get", "version": "1.1",
                                 "version_cap": "1.0", "code": 400}
    assert str(info.value) == ("service_get needs protocol version 1.1, above this client's "
                               "version_cap 1.0; it was not sent")
    assert isinstance(info.value, exceptions.UnsupportedVersion)
    async with db.job_queue() as q:
        with pytest.raises(exceptions.VersionCapExceeded, match="service_update"):
            q.service_update(ADMIN, 1, {})
    assert len(q) == 0


def test_version_cap_must_be_a_version():
    for bad in ("1", "one.two", "1.0.0", "", "1.x"):
        with pytest.raises(ValueError, match="MAJOR.MINOR"):
            ConductorClient(version_cap=bad)


def test_version_rules():
    assert catalog.version_allows("1.0", "1.0")
    assert catalog.version_allows("1.3", "1.2")
    assert not catalog.version_allows("1.2", "1.3")
    assert not catalog.version_allows("2.0", "1.0")  # another major is another protocol
    assert all(catalog.version_allows(catalog.PROTOCOL_VERSION, f.version)
               for f in catalog.FUNCTIONS)


def test_job_queues_take_writes_only():
    q = JobQueue(10)
    with pytest.raises(TypeError, match="service_get_all is a read"):
        q.service_get_all(ADMIN)  # type: ignore[attr-defined]
    with pytest.raises(AttributeError):
        q.no_such_function  # type: ignore[attr-defined]  # noqa: B018
    handle = q.service_create(ADMIN, {"host": "a"})
    assert not handle.done() and len(q) == 1
    assert q.calls[0].function.name == "service_create" and q.calls[0].args == ({"host": "a"},)


def test_a_context_without_request_id_still_sends_one():
    from client.core import _wire_context

    ctxt = RequestContext("u", "p")
    assert _wire_context(ctxt)["request_id"] == ctxt.request_id
    ctxt.request_id = None
    first, second = _wire_context(ctxt)["request_id"], _wire_context(ctxt)["request_id"]
    assert first.startswith("req-") and second.startswith("req-") and first != second


_TYPED_USE = '''
from client import BlockingConductorClient, ConductorClient
from schemas.context import RequestContext


async def use(db: ConductorClient, blocking: BlockingConductorClient,
              ctxt: RequestContext) -> None:
    reveal_type(await db.instance_get_by_uuid(ctxt, "u"))
    reveal_type(blocking.options(timeout=1).dnsdomain_get(ctxt, "example.org"))
    reveal_type(await db.security_group_exists(ctxt, "p", "default"))
    async with db.job_queue() as q:
        reveal_type(q.service_create(ctxt, {}))
    await db.instance_get_by_uuid(ctxt)
    blocking.instance_get_by_uid(ctxt, "u")
'''


def test_type_checkers_see_the_methods(tmp_path, pytestconfig):
    mypy_api = pytest.importorskip("mypy.api", reason="mypy is in the test extra")
    snippet = tmp_path / "use_client.py"
    snippet.write_text(_TYPED_USE, encoding="utf-8")
    # Under .pytest_cache, kept between runs (a fresh one when the cache plugin is off).
    store = getattr(pytestconfig, "cache", None)
    cache = store.mkdir("mypy") if store is not None else tmp_path / "mypy-cache"
    out, _, _ = mypy_api.run([str(snippet), "--no-error-summary", "--follow-imports=silent",
                              "--cache-dir", str(cache)])
    # By file name: mypy may replay a cached result under an earlier run's tmp path.
    lines = [line.split(": ", 1)[1] for line in out.splitlines()
             if line.split(":", 1)[0].endswith(snippet.name)]
    assert lines == [
        'note: Revealed type is "dict[str, Any]"',
        'note: Revealed type is "dict[str, Any] | None"',
        'note: Revealed type is "bool"',
        'note: Revealed type is "client.jobs.Pending"',
        'error: Missing positional argument "uuid" in call to "instance_get_by_uuid" of '
        '"AsyncAPI"  [call-arg]',
        'error: "BlockingConductorClient" has no attribute "instance_get_by_uid"  '
        '[attr-defined]',
    ]
