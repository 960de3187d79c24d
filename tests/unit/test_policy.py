"""The policy file: parsing, and what it allows (the end-to-end path is in tests/rpc)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conductor import policy
from schemas import catalog, exceptions
from schemas.context import RequestContext, get_admin_context

POLICY = """
[users."*"]
functions = ["read"]

[users.compute]
functions = ["read", "instance_update", "instance_info_cache_*"]
projects = ["tenant-*"]

[users.operator]
admin = true
functions = ["read", "write"]
"""


def _fn(name: str) -> catalog.Function:
    func = catalog.get(name)
    assert func is not None
    return func


@pytest.fixture
def loaded(tmp_path: Path) -> policy.Policy:
    path = tmp_path / "policy.toml"
    path.write_text(POLICY)
    return policy.load(path)


def test_functions_by_name_glob_and_class(loaded: policy.Policy) -> None:
    user = RequestContext("u", "tenant-a")
    loaded.check("compute", _fn("instance_get_by_uuid"), user)          # class read
    loaded.check("compute", _fn("instance_update"), user)               # name
    loaded.check("compute", _fn("instance_info_cache_update"), user)    # glob
    with pytest.raises(exceptions.NotAuthorized) as caught:
        loaded.check("compute", _fn("instance_destroy"), user)
    assert "instance_destroy" in str(caught.value)
    assert caught.value.kwargs["function"] == "instance_destroy"


def test_admin_contexts_and_projects(loaded: policy.Policy) -> None:
    with pytest.raises(exceptions.NotAuthorized, match="admin"):
        loaded.check("compute", _fn("instance_get_by_uuid"), get_admin_context())
    loaded.check("operator", _fn("instance_destroy"), get_admin_context())
    with pytest.raises(exceptions.NotAuthorized, match="project"):
        loaded.check("compute", _fn("instance_get_by_uuid"), RequestContext("u", "other"))


def test_default_entry_and_missing_identity(loaded: policy.Policy) -> None:
    loaded.check("stranger", _fn("service_get_all"), RequestContext("u", "p"))
    with pytest.raises(exceptions.NotAuthorized):
        loaded.check("stranger", _fn("service_create"), RequestContext("u", "p"))
    with pytest.raises(exceptions.NotAuthorized, match="user_id"):
        loaded.check(None, _fn("service_get_all"), RequestContext("u", "p"))
    strict = policy.parse({"users": {"compute": {"functions": ["read"]}}})
    with pytest.raises(exceptions.NotAuthorized, match="no entry"):
        strict.check("stranger", _fn("service_get_all"), RequestContext("u", "p"))


@pytest.mark.parametrize("text, message", [
    ("[users.a]\nadmin = 'yes'\n", "admin must be true or false"),
    ("[users.a]\nfunctions = ['instance_gte']\n", "neither a function"),
    ("[users.a]\nfunction = ['read']\n", "unknown keys"),
    ("[user.a]\n", "unknown top-level keys"),
    ("users = 3\n", "no [users.NAME] tables"),
    ("[users.a\n", "not valid TOML"),
])
def test_malformed_files_say_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(text)
    with pytest.raises(policy.PolicyError, match=message.replace("[", r"\[")):
        policy.load(path)


def test_reload_keeps_the_old_policy_when_the_new_one_is_broken(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(POLICY)
    holder = policy.PolicyHolder(path)
    path.write_text("[users.a\n")
    assert not holder.reload()
    holder.check("operator", _fn("instance_destroy"), get_admin_context())
    path.write_text('[users.operator]\nfunctions = ["read"]\n')
    assert holder.reload()
    with pytest.raises(exceptions.NotAuthorized):
        holder.check("operator", _fn("instance_destroy"), get_admin_context())
    assert policy.PolicyHolder(None).describe() == "none"
