"""The catalog against the seed listing of ``nova/db/api.py`` and the specs' classification."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

from schemas import catalog
from schemas.catalog import FUNCTIONS, Function

# Helpers of nova/db/sqlalchemy/session.py that the seed documents alongside the API;
# they take no context and are not part of the database API.
SESSION_HELPERS = frozenset({
    "add_regexp_listener", "debug_mysql_do_query", "get_engine", "get_maker",
    "get_session", "is_db_connection_error", "ping_listener",
    "synchronous_switch_listener",
})
CONDITION_BUILDERS = frozenset({"constraint", "equal_any", "not_equal"})

SNAPSHOT_FUNCTIONS = {
    "database_snapshot_create": ("context, values", "write", "admin"),
    "database_snapshot_get": ("context, resource_id", "read", "any"),
    "database_snapshot_get_by_provider_id": (
        "context, organization_service_id, region_name, snapshot_id", "read", "any"),
    "database_snapshot_get_all": (
        "context, filters=None, sort_key='create_time', sort_dir='desc', limit=None, marker=None",
        "read", "any"),
    "database_snapshot_get_all_by_instance": ("context, instance_resource_id", "read", "any"),
    "database_snapshot_update": ("context, resource_id, values", "write", "admin"),
    "database_snapshot_destroy": ("context, resource_id", "write", "admin"),
    "database_snapshot_creation_timestamp": ("context, resource_id", "read", "any"),
}

_LINE = re.compile(r"([a-z_][a-z_0-9]*)\((.*)\)")


DATA = Path(__file__).resolve().parents[1] / "data" / "nova_db_api.txt"


def _seed_functions() -> dict[str, str]:
    """Nova's function listing, kept in the repository (tests/data, with its source)."""
    found: dict[str, str] = {}
    for line in DATA.read_text(encoding="utf-8").splitlines():
        m = _LINE.fullmatch(line.strip())
        if not m:
            continue
        name, params = m.groups()
        if name in SESSION_HELPERS:
            continue
        if params.startswith("context") or name in CONDITION_BUILDERS:
            assert name not in found, f"{name} listed twice in the seed"
            found[name] = params
    return found


def _expected_signature(params: str) -> inspect.Signature:
    """Signature of ``def f(<params>)`` built independently of the catalog's parser."""
    args = ast.parse(f"def f({params}): pass").body[0].args  # type: ignore[attr-defined]
    assert not args.kwonlyargs and not args.posonlyargs
    pos = args.args
    defaults = [ast.literal_eval(d) for d in args.defaults]
    first = len(pos) - len(defaults)
    out = []
    for i, a in enumerate(pos):
        default = defaults[i - first] if i >= first else inspect.Parameter.empty
        out.append(inspect.Parameter(a.arg, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                     default=default))
    if args.vararg:
        out.append(inspect.Parameter(args.vararg.arg, inspect.Parameter.VAR_POSITIONAL))
    if args.kwarg:
        out.append(inspect.Parameter(args.kwarg.arg, inspect.Parameter.VAR_KEYWORD))
    return inspect.Signature(out)


@pytest.fixture(scope="module")
def seed() -> dict[str, str]:
    return _seed_functions()


def _by_name() -> dict[str, Function]:
    return {f.name: f for f in FUNCTIONS}


def test_seed_lists_298_functions(seed: dict[str, str]) -> None:
    assert len(seed) == 298 == catalog.NOVA_FUNCTION_COUNT
    assert CONDITION_BUILDERS <= seed.keys()
    assert sum(1 for p in seed.values() if p.startswith("context")) == 295


def test_no_duplicate_names() -> None:
    names = [f.name for f in FUNCTIONS]
    dupes = sorted({n for n in names if names.count(n) > 1})
    assert not dupes, f"duplicate catalog entries: {dupes}"
    assert len(catalog.BY_NAME) == len(FUNCTIONS)


def test_catalog_is_seed_plus_snapshots(seed: dict[str, str]) -> None:
    names = set(_by_name())
    assert not seed.keys() & SNAPSHOT_FUNCTIONS.keys()
    missing = sorted((seed.keys() | SNAPSHOT_FUNCTIONS.keys()) - names)
    extra = sorted(names - seed.keys() - SNAPSHOT_FUNCTIONS.keys())
    assert not missing, f"missing from the catalog: {missing}"
    assert not extra, f"not in the seed nor the snapshot spec: {extra}"
    assert len(FUNCTIONS) == 306


def test_order_nova_alphabetical_then_snapshots(seed: dict[str, str]) -> None:
    names = [f.name for f in FUNCTIONS]
    nova, snaps = names[:298], names[298:]
    assert nova == list(seed) == sorted(nova)
    assert set(snaps) == set(SNAPSHOT_FUNCTIONS)


def test_signatures_match_seed(seed: dict[str, str]) -> None:
    by_name = _by_name()
    wrong = {}
    for name, params in seed.items():
        expected = _expected_signature(params)
        got = by_name[name].signature
        if got != expected or str(got) != str(expected):
            wrong[name] = (str(got), str(expected))
        # defaults compared by type too (False vs 0, None vs ...)
        for gp, ep in zip(got.parameters.values(), expected.parameters.values(), strict=True):
            assert type(gp.default) is type(ep.default), (name, gp.name)
    assert not wrong, wrong


def test_snapshot_entries() -> None:
    by_name = _by_name()
    for name, (params, kind, access) in SNAPSHOT_FUNCTIONS.items():
        func = by_name[name]
        assert func.signature == _expected_signature(params), name
        assert (func.kind, func.access) == (kind, access), name
        assert func.version == "1.0"


def test_legal_values() -> None:
    for func in FUNCTIONS:
        assert func.kind in ("read", "write", "local"), func.name
        assert func.access in ("admin", "any", "none"), func.name
        assert func.version in catalog.SUPPORTED_VERSIONS, func.name
        assert func.version == "1.0", func.name
        assert func.is_write == (func.kind == "write")


def test_condition_builders_are_local() -> None:
    by_name = _by_name()
    local = {f.name for f in FUNCTIONS if f.kind == "local"}
    assert local == CONDITION_BUILDERS
    for name in CONDITION_BUILDERS:
        assert by_name[name].access == "none"
        assert "context" not in by_name[name].signature.parameters
    remote = catalog.remote_functions()
    assert len(remote) == 303
    assert not CONDITION_BUILDERS & {f.name for f in remote}


def test_every_remote_function_takes_context_first() -> None:
    for func in catalog.remote_functions():
        assert func.params[0].name == "context", func.name


@pytest.mark.parametrize(("name", "kind", "access"), [
    # api-compute.md
    ("service_get", "read", "admin"),
    ("service_destroy", "write", "admin"),
    ("compute_node_get", "read", "none"),
    ("compute_node_update", "write", "admin"),
    ("instance_create", "write", "any"),
    ("instance_get_all_by_filters", "read", "any"),
    ("instance_get_all_by_project", "read", "admin"),       # admin only in effect
    ("instance_get_all_by_reservation", "read", "admin"),   # admin only in effect
    ("instance_test_and_set", "write", "any"),
    ("instance_info_cache_update", "write", "any"),         # may create the row
    ("instance_info_cache_delete", "write", "any"),
    ("instance_fault_create", "write", "none"),
    ("instance_fault_get_by_instance_uuids", "read", "none"),
    ("key_pair_get", "read", "any"),                        # any context, user check
    ("key_pair_count_by_user", "read", "none"),             # no check except the user check
    ("ec2_instance_create", "write", "any"),
    ("get_instance_uuid_by_ec2_id", "read", "any"),
    ("s3_image_create", "write", "none"),
    ("s3_image_get", "read", "none"),
    ("console_delete", "write", "none"),                    # section: no context check
    ("console_get", "read", "none"),
    ("agent_build_get_all", "read", "admin"),               # section: all admin only
    ("aggregate_create", "write", "admin"),                 # section: all admin only
    ("aggregate_metadata_get_by_host", "read", "admin"),
    ("bw_usage_update", "write", "any"),
    ("task_log_begin_task", "write", "admin"),
    ("task_log_get", "read", "admin"),
    # api-network-quota-storage.md
    ("project_get_networks", "write", "any"),               # may associate a network
    ("network_associate", "write", "admin"),
    ("network_update", "write", "any"),
    ("fixed_ip_associate_pool", "write", "admin"),
    ("floating_ip_allocate_address", "write", "any"),
    ("dnsdomain_get", "read", "any"),
    ("security_group_ensure_default", "write", "none"),     # unchecked, creates
    ("quota_reserve", "write", "any"),
    ("reservation_commit", "write", "any"),
    ("reservation_rollback", "write", "any"),
    ("reservation_expire", "write", "admin"),
    ("quota_get", "read", "any"),
    ("volume_attached", "write", "admin"),
    ("volume_get_active_by_window", "read", "any"),
    ("sm_backend_conf_get", "read", "admin"),
    ("sm_flavor_delete", "write", "admin"),
    ("sm_volume_get", "read", "none"),
    ("sm_volume_update", "write", "none"),
])
def test_spec_classification(name: str, kind: str, access: str) -> None:
    func = catalog.get(name)
    assert func is not None, name
    assert (func.kind, func.access) == (kind, access)


WRITE_VERBS = frozenset({
    "add", "allocate", "associate", "attached", "begin", "commit", "create", "deallocate",
    "delete", "destroy", "detached", "disassociate", "end", "ensure", "expire", "register",
    "remove", "reserve", "rollback", "set", "unregister", "update",
})


def test_write_like_names_are_writes() -> None:
    """A name with a verb that changes rows is never catalogued as a read."""
    for func in FUNCTIONS:
        if func.kind != "local" and WRITE_VERBS & set(func.name.split("_")):
            assert func.kind == "write", func.name


def test_counts() -> None:
    kinds = {k: sum(f.kind == k for f in FUNCTIONS) for k in ("read", "write", "local")}
    access = {a: sum(f.access == a for f in FUNCTIONS) for a in ("admin", "any", "none")}
    assert kinds == {"read": 161, "write": 142, "local": 3}
    assert access == {"admin": 134, "any": 146, "none": 26}
