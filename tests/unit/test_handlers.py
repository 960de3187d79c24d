import inspect

from client import BlockingConductorClient, ConductorClient
from conductor.handlers import HANDLERS, load_all, signature_mismatches
from schemas import catalog


def test_every_handler_matches_its_catalog_signature():
    handlers = load_all()
    assert handlers, "no handler registered"
    assert signature_mismatches() == []
    assert set(handlers) <= {f.name for f in catalog.remote_functions()}


def test_client_methods_are_the_catalog():
    for func in catalog.remote_functions():
        for cls in (ConductorClient, BlockingConductorClient):
            method = getattr(cls, func.name)
            params = [p.replace(annotation=inspect.Parameter.empty)
                      for p in inspect.signature(method).parameters.values()]
            assert inspect.Signature(params[1:]) == func.signature, (cls, func.name)
            assert func.name in method.__doc__
    client = ConductorClient()
    assert str(inspect.signature(client.instance_get_all_by_filters)) == (
        "(context: 'RequestContext', filters: 'Any', sort_key: 'Any' = 'created_at', "
        "sort_dir: 'Any' = 'desc', limit: 'Any' = None, marker: 'Any' = None) -> 'Any'")
    for name in ("constraint", "equal_any", "not_equal"):
        assert callable(getattr(client, name))


def test_in_process_options_are_keyword_only_with_defaults(monkeypatch):
    load_all()

    async def snapshot_get(session, context, snapshot_id, *, lock=False):
        return None

    monkeypatch.setitem(HANDLERS, "snapshot_get", snapshot_get)
    assert signature_mismatches() == []

    async def snapshot_get_positional(session, context, snapshot_id, lock=False):
        return None

    async def snapshot_get_required(session, context, snapshot_id, *, lock):
        return None

    for wrong in (snapshot_get_positional, snapshot_get_required):
        monkeypatch.setitem(HANDLERS, "snapshot_get", wrong)
        assert [p.split(":")[0] for p in signature_mismatches()] == ["snapshot_get"]
