import inspect

from client import BlockingConductorClient, ConductorClient
from conductor.handlers import load_all, signature_mismatches
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
