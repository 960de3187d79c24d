"""service_* through the client (RabbitMQ -> conductor -> PostgreSQL) and on SQLite."""

import pytest

from schemas import exceptions
from schemas.context import RequestContext, get_admin_context


async def _service(db, admin, **values):
    base = {"host": "host1", "binary": "nova-compute", "topic": "compute"}
    base.update(values)
    return await db.service_create(admin, base)


async def test_create_fills_defaults_and_get_returns_it(db, admin):
    s = await _service(db, admin)
    assert s["id"] > 0 and s["report_count"] == 0 and s["disabled"] is False
    assert s["availability_zone"] == "nova" and s["deleted"] is False
    assert s["created_at"] is not None and s["updated_at"] is None
    got = await db.service_get(admin, s["id"])
    assert got["host"] == "host1" and got["compute_node"] == []
    assert {k: got[k] for k in s} == s


async def test_get_missing_raises_with_kwargs(db, admin):
    with pytest.raises(exceptions.ServiceNotFound) as info:
        await db.service_get(admin, 999)
    assert info.value.kwargs == {"service_id": 999, "code": 404}
    with pytest.raises(exceptions.ServiceNotFound):
        await db.service_get(admin, "not-an-id")


async def test_admin_only(db, user):
    with pytest.raises(exceptions.AdminRequired):
        await db.service_get_all(user)
    with pytest.raises(exceptions.AdminRequired):
        await db.service_create(user, {"host": "h"})


async def test_service_get_includes_live_compute_nodes(db, admin):
    s = await _service(db, admin)
    n1 = await db.compute_node_create(admin, {"service_id": s["id"], "vcpus": 2})
    n2 = await db.compute_node_create(admin, {"service_id": s["id"], "vcpus": 4})
    got = await db.service_get(admin, s["id"])
    assert [n["id"] for n in got["compute_node"]] == [n1["id"], n2["id"]]
    assert "stats" not in got["compute_node"][0]


async def test_update_returns_none_and_moves_updated_at(db, admin):
    s = await _service(db, admin)
    assert await db.service_update(admin, s["id"], {"report_count": 5, "nonsense": 1}) is None
    got = await db.service_get(admin, s["id"])
    assert got["report_count"] == 5 and got["updated_at"] is not None
    with pytest.raises(exceptions.ServiceNotFound):
        await db.service_update(admin, 4242, {"report_count": 1})


async def test_destroy_soft_deletes_service_and_its_compute_nodes(db, admin):
    s = await _service(db, admin)
    node = await db.compute_node_create(admin, {"service_id": s["id"], "vcpus": 1})
    assert await db.service_destroy(admin, s["id"]) is None
    with pytest.raises(exceptions.ServiceNotFound):
        await db.service_get(admin, s["id"])
    gone = await db.service_get(get_admin_context("yes"), s["id"])
    assert gone["deleted"] is True and gone["deleted_at"] is not None
    with pytest.raises(exceptions.ComputeHostNotFound):
        await db.compute_node_get(admin, node["id"])
    dead = await db.compute_node_get(get_admin_context("only"), node["id"])
    assert dead["deleted"] is True


async def test_destroy_of_non_compute_service_leaves_nodes(db, admin):
    s = await _service(db, admin, topic="volume", binary="nova-volume")
    node = await db.compute_node_create(admin, {"service_id": s["id"]})
    await db.service_destroy(admin, s["id"])
    assert (await db.compute_node_get(admin, node["id"]))["deleted"] is False


async def test_get_all_with_disabled_filter_and_read_deleted(db, admin):
    a = await _service(db, admin, host="a")
    b = await _service(db, admin, host="b", disabled=True)
    c = await _service(db, admin, host="c")
    await db.service_destroy(admin, c["id"])
    assert [s["id"] for s in await db.service_get_all(admin)] == [a["id"], b["id"]]
    assert [s["id"] for s in await db.service_get_all(admin, disabled=True)] == [b["id"]]
    assert [s["id"] for s in await db.service_get_all(admin, False)] == [a["id"]]
    everything = await db.service_get_all(get_admin_context("yes"))
    assert [s["id"] for s in everything] == [a["id"], b["id"], c["id"]]
    assert [s["id"] for s in await db.service_get_all(get_admin_context("only"))] == [c["id"]]


async def test_by_host_and_topic_skips_disabled_and_deleted(db, admin):
    await _service(db, admin, disabled=True)
    assert await db.service_get_by_host_and_topic(admin, "host1", "compute") is None
    live = await _service(db, admin)
    got = await db.service_get_by_host_and_topic(get_admin_context("only"), "host1", "compute")
    assert got["id"] == live["id"]


async def test_by_topic_and_by_host(db, admin):
    a = await _service(db, admin, host="h1")
    await _service(db, admin, host="h2", disabled=True)
    v = await _service(db, admin, host="h1", topic="volume")
    d = await _service(db, admin, host="h1", topic="compute")
    await db.service_destroy(admin, d["id"])
    assert [s["id"] for s in await db.service_get_all_by_topic(admin, "compute")] == [a["id"]]
    by_host = await db.service_get_all_by_host(get_admin_context("yes"), "h1")
    assert [s["id"] for s in by_host] == [a["id"], v["id"]]


async def test_compute_by_host(db, admin):
    s = await _service(db, admin, host="h1", disabled=True)
    await _service(db, admin, host="h1", topic="volume")
    node = await db.compute_node_create(admin, {"service_id": s["id"]})
    found = await db.service_get_all_compute_by_host(admin, "h1")
    assert [f["id"] for f in found] == [s["id"]]
    assert [n["id"] for n in found[0]["compute_node"]] == [node["id"]]
    with pytest.raises(exceptions.ComputeHostNotFound) as info:
        await db.service_get_all_compute_by_host(admin, "nowhere")
    assert info.value.kwargs["host"] == "nowhere"


async def test_compute_sorted_counts_live_instance_cores(db, admin):
    busy = await _service(db, admin, host="busy")
    idle = await _service(db, admin, host="idle")
    light = await _service(db, admin, host="light")
    await _service(db, admin, host="off", disabled=True)
    await _service(db, admin, host="vol", topic="volume")
    for vcpus in (4, 4):
        await db.instance_create(admin, {"host": "busy", "vcpus": vcpus})
    await db.instance_create(admin, {"host": "light", "vcpus": 1})
    gone = await db.instance_create(admin, {"host": "light", "vcpus": 16})
    await db.instance_destroy(admin, gone["uuid"])
    result = await db.service_get_all_compute_sorted(admin)
    assert [(s["id"], cores) for s, cores in result] == \
        [(idle["id"], 0), (light["id"], 1), (busy["id"], 8)]
    assert isinstance(result[0], tuple) and "compute_node" not in result[0][0]


async def test_get_by_args(db, admin):
    s = await _service(db, admin, disabled=True)
    assert (await db.service_get_by_args(admin, "host1", "nova-compute"))["id"] == s["id"]
    with pytest.raises(exceptions.HostBinaryNotFound) as info:
        await db.service_get_by_args(admin, "host1", "nova-volume")
    assert info.value.kwargs == {"host": "host1", "binary": "nova-volume", "code": 404}


async def test_create_with_explicit_base_columns(db, admin):
    import datetime as dt

    old = dt.datetime(2000, 1, 1, 12, 0, 0)
    s = await _service(db, admin, id=77, created_at=old, updated_at=old)
    got = await db.service_get(admin, 77)
    assert s["id"] == 77 and got["created_at"] == old and got["updated_at"] == old
    # A forced id moves the id sequence past it: the next automatic id does not collide.
    assert (await _service(db, admin))["id"] == 78
    await _service(db, admin, id=5)
    assert (await _service(db, admin))["id"] == 79


async def test_bad_values_are_invalid_input_naming_the_column(db, admin):
    with pytest.raises(exceptions.InvalidInput, match="services.report_count"):
        await db.service_create(admin, {"host": "h", "report_count": "many"})
    with pytest.raises(exceptions.InvalidInput, match="services.host"):
        await db.service_create(admin, {"host": "x" * 300})
    assert await db.service_get_all(admin) == []
    s = await db.service_create(admin, {"host": 12, "report_count": "3"})
    got = await db.service_get(admin, s["id"])
    assert got["host"] == "12" and got["report_count"] == 3


async def test_lookups_with_values_of_the_wrong_type_match_nothing(db, admin):
    await _service(db, admin, host="12")
    assert [s["host"] for s in await db.service_get_all_by_host(admin, 12)] == ["12"]
    assert await db.service_get_all_by_host(admin, {"not": "a host"}) == []
    assert await db.service_get_by_host_and_topic(admin, ["x"], 5) is None


async def test_anonymous_context_is_refused(db):
    with pytest.raises(exceptions.AdminRequired):
        await db.service_get_all(RequestContext(None, None))
