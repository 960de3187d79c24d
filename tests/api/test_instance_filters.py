"""instance_get_all_by_filters (api-compute.md §3.6): every filter key, order and paging.

Each test builds one small fleet and checks a table of cases against it, so that a case
costs a query, not a database reset.
"""

import datetime as dt
import uuid

import pytest

from schemas import exceptions
from schemas.context import RequestContext, get_admin_context

LAUNCHED = dt.datetime(2012, 6, 1, 10, 0, 0)


async def _fleet(db, admin):
    """Five instances; ``gone`` is destroyed, ``soft`` is in vm_state soft-delete."""
    specs = {
        "a": {"display_name": "test1", "project_id": "p1", "user_id": "u1",
              "vm_state": "active", "image_ref": "img1", "instance_type_id": 1,
              "host": "node1", "metadata": {"foo": "bar"}, "locked": True,
              "power_state": 1, "launched_at": LAUNCHED},
        "b": {"display_name": "teeeest2", "project_id": "p1", "user_id": "u2",
              "vm_state": "building", "image_ref": "img2", "instance_type_id": 2,
              "host": "node10", "metadata": {"a": "2", "b": "1"}, "locked": False,
              "power_state": 10},
        "c": {"display_name": "diff", "project_id": "p2", "user_id": "u1"},
        "soft": {"display_name": "test\u2665", "project_id": "p2", "user_id": "u2",
                 "vm_state": "soft-delete", "host": "node2", "power_state": 4},
        "gone": {"display_name": "gone", "project_id": "p1", "user_id": "u1",
                 "vm_state": "deleted", "host": "node1"},
    }
    fleet = {}
    for key, values in specs.items():
        fleet[key] = await db.instance_create(admin, values)
    await db.instance_destroy(admin, fleet["gone"]["uuid"])
    return fleet


def _matcher(db, fleet, context):
    by_id = {inst["id"]: key for key, inst in fleet.items()}

    async def names(filters, **kwargs):
        rows = await db.instance_get_all_by_filters(context, filters, **kwargs)
        return [by_id[r["id"]] for r in rows]

    async def matches(filters):
        return sorted(await names(filters))

    return names, matches


async def _check(matches, cases):
    for filters, expected in cases:
        assert await matches(filters) == sorted(expected), filters


async def test_exact_filters(db, admin):
    fleet = await _fleet(db, admin)
    _, matches = _matcher(db, fleet, admin)
    await _check(matches, [
        ({"project_id": "p1"}, ["a", "b", "gone"]),
        ({"project_id": ["p2", "nope"]}, ["c", "soft"]),
        ({"user_id": ("u2",)}, ["b", "soft"]),
        ({"user_id": {"u1", "u2"}, "project_id": "p2"}, ["c", "soft"]),
        ({"image_ref": "img1"}, ["a"]),
        ({"image_ref": None}, ["c", "soft", "gone"]),
        ({"image_ref": "img"}, []),  # exact, not a regular expression
        ({"vm_state": ["active", "building", None]}, ["a", "b"]),  # IN: NULL never matches
        ({"vm_state": None}, ["c"]),
        ({"instance_type_id": 1}, ["a"]),
        ({"instance_type_id": "2"}, ["b"]),
        ({"instance_type_id": "abc"}, []),
        ({"instance_type_id": [1, 2, "x"]}, ["a", "b"]),
        ({"uuid": fleet["c"]["uuid"]}, ["c"]),
        ({"uuid": [fleet["a"]["uuid"], fleet["gone"]["uuid"]]}, ["a", "gone"]),
        ({"uuid": []}, []),
        ({"project_id": "p1", "vm_state": "active"}, ["a"]),
    ])


async def test_regular_expression_filters(db, admin):
    fleet = await _fleet(db, admin)
    _, matches = _matcher(db, fleet, admin)
    await _check(matches, [
        ({"display_name": "t.*st."}, ["a", "b", "soft"]),  # TESTED (not 'diff')
        ({"display_name": "test"}, ["a", "soft"]),  # TESTED: matches u'test♥'
        ({"display_name": "\u2665$"}, ["soft"]),
        ({"display_name": "TEST"}, []),  # case-sensitive
        ({"display_name": "^t"}, ["a", "b", "soft"]),
        ({"host": "node1"}, ["a", "b", "gone"]),  # unanchored: node10 too
        ({"host": "^node1$"}, ["a", "gone"]),
        ({"host": ".*"}, ["a", "b", "soft", "gone"]),  # NULL never matches
        ({"host": "None"}, []),
        ({"power_state": 1}, ["a", "b"]),  # str(1) against '1' and '10'
        ({"power_state": "^4$"}, ["soft"]),
        ({"locked": True}, ["a"]),  # str(True) against the value shown as Python shows it
        ({"locked": "False"}, ["b"]),
        ({"launched_at": "^2012-06-01 10:00:00$"}, ["a"]),
        ({"id": f"^{fleet['b']['id']}$"}, ["b"]),
        ({"display_name": "t", "host": "2"}, ["soft"]),
    ])
    with pytest.raises(exceptions.InvalidInput):
        await db.instance_get_all_by_filters(admin, {"display_name": "(unclosed"})


async def test_ignored_keys_and_tenant_forcing(db, admin):
    fleet = await _fleet(db, admin)
    names, matches = _matcher(db, fleet, admin)
    everyone = ["a", "b", "c", "soft", "gone"]
    await _check(matches, [
        ({}, everyone),
        (None, everyone),
        ({"name": fleet["a"]["name"]}, everyone),  # computed, not a filter
        ({"ip": "10.0.0.1", "ip6": "::1", "instance_name": "x", "bogus": 1}, everyone),
        ({"security_groups": "x", "info_cache": "y", "system_metadata": "z"}, everyone),
    ])
    user = RequestContext("u9", "p1")
    _, theirs = _matcher(db, fleet, user)
    await _check(theirs, [
        ({}, ["a", "b", "gone"]),
        ({"project_id": "p2"}, ["a", "b", "gone"]),  # replaced by the context's project
        ({"project_id": None, "vm_state": "active"}, ["a"]),
    ])
    assert await db.instance_get_all_by_filters(RequestContext("u9", "p3"), {}) == []
    with pytest.raises(exceptions.NotAuthorized):
        await db.instance_get_all_by_filters(RequestContext(None, None), {})
    with pytest.raises(exceptions.InvalidInput):
        await db.instance_get_all_by_filters(admin, ["project_id"])


async def test_metadata_filter(db, admin):
    fleet = await _fleet(db, admin)
    _, matches = _matcher(db, fleet, admin)
    await _check(matches, [
        ({"metadata": {"foo": "bar"}}, ["a"]),  # TESTED
        ({"metadata": {"a": "1"}}, ["b"]),  # Quirk: key and value on different items
        ({"metadata": {"a": "2", "b": "1"}}, ["b"]),
        ({"metadata": [{"a": "2"}, {"foo": "bar"}]}, []),
        ({"metadata": [{"a": "2"}, {"b": "2"}]}, ["b"]),
        ({"metadata": {"foo": "baz"}}, []),
        ({"metadata": {}}, ["a", "b", "c", "soft", "gone"]),
        ({"metadata": {"a": 2}}, ["b"]),
    ])
    # deleted items do not count
    await db.instance_metadata_delete(admin, fleet["a"]["uuid"], "foo")
    assert await matches({"metadata": {"foo": "bar"}}) == []
    with pytest.raises(exceptions.InvalidInput):
        await db.instance_get_all_by_filters(admin, {"metadata": "foo=bar"})


async def test_deleted_filter_and_read_deleted_is_ignored(db, admin):
    fleet = await _fleet(db, admin)
    for context in (admin, get_admin_context("only"), get_admin_context("yes")):
        _, matches = _matcher(db, fleet, context)
        await _check(matches, [
            ({}, ["a", "b", "c", "soft", "gone"]),  # TESTED: the destroyed one too
            ({"deleted": True}, ["soft", "gone"]),
            ({"deleted": 1}, ["soft", "gone"]),
            # Quirk: vm_state <> 'soft-delete' also drops the NULL vm_state of c
            ({"deleted": False}, ["a", "b"]),
            ({"deleted": None, "project_id": "p1"}, ["a", "b"]),
        ])
    rows = await db.instance_get_all_by_filters(admin, {"uuid": fleet["gone"]["uuid"]})
    assert rows[0]["deleted"] is True and rows[0]["deleted_at"] is not None


async def test_changes_since(db, admin):
    fleet = await _fleet(db, admin)
    _, matches = _matcher(db, fleet, admin)
    before = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(seconds=5)
    assert await matches({"changes-since": before}) == []  # never updated: excluded
    await db.instance_update(admin, fleet["b"]["uuid"], {"host": "moved"})
    east = dt.timezone(dt.timedelta(hours=5))
    await _check(matches, [
        ({"changes-since": before}, ["b"]),
        ({"changes-since": before.replace(tzinfo=dt.UTC).astimezone(east)}, ["b"]),
        ({"changes-since": before.isoformat()}, ["b"]),
        ({"changes-since": before + dt.timedelta(hours=1)}, []),
        ({"changes-since": before + dt.timedelta(hours=-6, seconds=1)}, ["b"]),
    ])
    for bad in ("last tuesday", None):
        with pytest.raises(exceptions.InvalidInput):
            await db.instance_get_all_by_filters(admin, {"changes-since": bad})


async def test_results_carry_the_listed_relationships(db, admin):
    fleet = await _fleet(db, admin)
    [row] = await db.instance_get_all_by_filters(admin, {"uuid": fleet["a"]["uuid"]})
    assert row["name"] == fleet["a"]["name"]
    assert [(m["key"], m["value"]) for m in row["metadata"]] == [("foo", "bar")]
    assert row["info_cache"]["instance_uuid"] == fleet["a"]["uuid"]
    assert row["instance_type"] is None and row["security_groups"] == []
    assert row["system_metadata"] == []  # every instance result carries it


async def test_sort_order(db, admin):
    fleet = await _fleet(db, admin)
    names, _ = _matcher(db, fleet, admin)
    # default: created_at desc, then id desc (creation in the same microsecond is possible)
    assert await names({}) == ["gone", "soft", "c", "b", "a"]
    assert await names({}, sort_dir="asc") == ["a", "b", "c", "soft", "gone"]
    assert await names({}, sort_key="display_name", sort_dir="asc") == \
        ["c", "gone", "b", "a", "soft"]
    assert await names({}, sort_key="display_name") == ["soft", "a", "b", "gone", "c"]
    # NULL sorts first ascending and last descending, on both backends
    assert await names({}, sort_key="vm_state", sort_dir="asc") == \
        ["c", "a", "b", "gone", "soft"]
    assert await names({}, sort_key="vm_state", sort_dir="desc") == \
        ["soft", "gone", "b", "a", "c"]
    # ties on the sort key fall back to created_at, then id, in the same direction
    assert await names({}, sort_key="project_id", sort_dir="asc") == \
        ["a", "b", "gone", "c", "soft"]
    for bad in ("bogus", "name", "metadata", None):
        with pytest.raises(exceptions.InvalidSortKey):
            await db.instance_get_all_by_filters(admin, {}, sort_key=bad)
    with pytest.raises(exceptions.InvalidInput):
        await db.instance_get_all_by_filters(admin, {}, sort_dir="up")


async def test_paging_with_marker_and_limit(db, admin):
    # TESTED: three matching instances, asc; marker at each -> 2, 1, 0 results
    made = [await db.instance_create(admin, {"display_name": f"vm{i}", "host": "h"})
            for i in range(3)]
    await db.instance_create(admin, {"host": "elsewhere"})
    for marker, left in zip(made, (2, 1, 0), strict=True):
        rows = await db.instance_get_all_by_filters(admin, {"host": "^h$"}, sort_dir="asc",
                                                    marker=marker["uuid"])
        assert len(rows) == left
    rows = await db.instance_get_all_by_filters(admin, {"host": "^h$"}, sort_dir="asc",
                                                marker=made[0]["uuid"], limit=1)
    assert [r["id"] for r in rows] == [made[1]["id"]]
    assert await db.instance_get_all_by_filters(admin, {}, limit=0) == []
    assert len(await db.instance_get_all_by_filters(admin, {}, limit=2)) == 2
    missing = str(uuid.uuid4())
    with pytest.raises(exceptions.MarkerNotFound) as info:
        await db.instance_get_all_by_filters(admin, {}, marker=missing)
    assert str(info.value) == missing and info.value.kwargs == {"code": 404}
    for bad in (-1, "many"):
        with pytest.raises(exceptions.InvalidInput):
            await db.instance_get_all_by_filters(admin, {}, limit=bad)


async def test_marker_lookup_follows_read_deleted_and_scoping(db, admin):
    fleet = await _fleet(db, admin)
    gone = fleet["gone"]["uuid"]
    with pytest.raises(exceptions.MarkerNotFound):
        await db.instance_get_all_by_filters(admin, {}, marker=gone)
    rows = await db.instance_get_all_by_filters(get_admin_context("yes"), {}, marker=gone,
                                                sort_dir="asc")
    assert rows == []
    with pytest.raises(exceptions.MarkerNotFound):
        await db.instance_get_all_by_filters(RequestContext("u1", "p2"), {},
                                             marker=fleet["a"]["uuid"])


async def test_walking_pages_gives_the_unpaged_order(db, admin):
    await _fleet(db, admin)
    await db.instance_create(admin, {"display_name": "test1", "vm_state": "active"})
    yes = get_admin_context("yes")  # so that the destroyed instance can be a marker
    for sort_key in ("display_name", "vm_state", "host", "created_at", "locked"):
        for sort_dir in ("asc", "desc"):
            whole = await db.instance_get_all_by_filters(admin, {}, sort_key=sort_key,
                                                         sort_dir=sort_dir)
            walked, marker = [], None
            while True:
                page = await db.instance_get_all_by_filters(
                    yes, {}, sort_key=sort_key, sort_dir=sort_dir, limit=2, marker=marker)
                if not page:
                    break
                walked += page
                marker = page[-1]["uuid"]
            assert len(whole) == 6
            assert [r["id"] for r in walked] == [r["id"] for r in whole], (sort_key, sort_dir)
