"""A context from the wire is strictly typed; one built in-process stays lenient."""

import datetime as dt

import pytest

from schemas.context import RequestContext
from schemas.exceptions import InvalidRequest

BASE = {"user_id": "u1", "project_id": "p1"}


@pytest.mark.parametrize(("field", "value"), [
    ("is_admin", "no"), ("is_admin", 1), ("is_admin", []),
    ("user_id", ["u1", "u2"]), ("user_id", 7), ("project_id", ["p1", "p2"]),
    ("project_id", {"p": 1}), ("roles", "admin"), ("roles", ["member", 1]),
    ("read_deleted", "maybe"), ("read_deleted", None), ("read_deleted", ["no"]),
    ("request_id", 5), ("auth_token", b"t"), ("overwrite", "yes"),
    ("instance_lock_checked", 1), ("service_catalog", {"type": "volume"}),
    ("timestamp", 12), ("timestamp", "2012-01-01" + "0" * 100), ("timestamp", "yesterday"),
    ("remote_address", 1), ("quota_class", 1), ("user_name", 1), ("project_name", 1),
])
def test_wrongly_typed_field_is_refused_naming_it(field, value):
    with pytest.raises(InvalidRequest, match=repr(field)):
        RequestContext.from_dict({**BASE, field: value})


def test_a_string_is_admin_does_not_make_an_admin():
    with pytest.raises(InvalidRequest, match="is_admin"):
        RequestContext.from_dict({**BASE, "is_admin": "no"})
    assert RequestContext.from_dict({**BASE, "is_admin": False}).is_admin is False


def test_well_typed_context_decodes():
    ctx = RequestContext.from_dict({
        **BASE, "is_admin": None, "roles": ["admin"], "read_deleted": "yes",
        "timestamp": "2012-09-27T12:00:00", "request_id": "req-1", "overwrite": False,
        "service_catalog": [{"type": "volume"}], "instance_lock_checked": True,
        "future_field": object()})
    assert ctx.is_admin is True  # from the admin role, as in Nova
    assert ctx.read_deleted == "yes"
    assert ctx.timestamp == dt.datetime(2012, 9, 27, 12)
    assert ctx.project_id == "p1" and ctx.instance_lock_checked is True


def test_absent_fields_take_the_defaults():
    ctx = RequestContext.from_dict({})
    assert ctx.user_id is None and ctx.project_id is None
    assert ctx.is_admin is False and ctx.read_deleted == "no" and ctx.roles == []


def test_not_a_map_is_refused():
    with pytest.raises(InvalidRequest, match="map"):
        RequestContext.from_dict(["u1"])  # type: ignore[arg-type]


def test_in_process_constructor_stays_lenient():
    assert RequestContext("u", "p", is_admin=1).is_admin is True
