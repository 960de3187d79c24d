"""compute_node_* through the client and on SQLite."""

import pytest

from schemas import exceptions
from schemas.context import get_admin_context

NODE = {"vcpus": 2, "memory_mb": 1024, "local_gb": 2048, "vcpus_used": 0,
        "memory_mb_used": 0, "local_gb_used": 0, "free_ram_mb": 1024, "free_disk_gb": 2048,
        "hypervisor_type": "xen", "hypervisor_version": 1, "cpu_info": "",
        "running_vms": 0, "current_workload": 0, "disk_available_least": 100,
        "hypervisor_hostname": "abracadabra104"}


async def _node(db, admin, host="host1", stats=None, **values):
    service = await db.service_create(admin, {"host": host, "binary": "nova-compute",
                                              "topic": "compute"})
    body = dict(NODE, service_id=service["id"], **values)
    if stats is not None:
        body["stats"] = stats
    return service, await db.compute_node_create(admin, body)


async def test_create_echoes_values_and_stats_and_ignores_unknown_keys(db, admin):
    stats = {"num_instances": 3, "num_proj_12345": 2, "num_vm_building": 1}
    _, node = await _node(db, admin, stats=stats, host_ignored="x")
    assert node["free_ram_mb"] == 1024 and node["free_disk_gb"] == 2048
    assert node["running_vms"] == 0 and node["current_workload"] == 0
    assert {s["key"]: s["value"] for s in node["stats"]} == stats
    # an unknown key is echoed as given (api-compute.md §1.5), never stored
    assert "host" not in node and node["host_ignored"] == "x"
    assert "host_ignored" not in await db.compute_node_get(admin, node["id"])


async def test_get_all_reads_stats_back_as_text(db, admin):
    service, node = await _node(db, admin, stats={"num_instances": 3})
    nodes = await db.compute_node_get_all(admin)
    assert len(nodes) == 1 and nodes[0]["vcpus"] == 2
    assert [(s["key"], s["value"]) for s in nodes[0]["stats"]] == [("num_instances", "3")]
    assert nodes[0]["service"]["id"] == service["id"]


async def test_get_and_its_error_carries_the_id_as_host(db, admin):
    service, node = await _node(db, admin)
    got = await db.compute_node_get(admin, node["id"])
    assert got["service"]["host"] == "host1" and got["stats"] == []
    with pytest.raises(exceptions.ComputeHostNotFound) as info:
        await db.compute_node_get(admin, 12345)
    assert info.value.kwargs == {"host": 12345, "code": 404}


async def test_update_merges_stats(db, admin):
    _, node = await _node(db, admin, stats={"num_instances": 3, "num_proj_12345": 2})
    updated = await db.compute_node_update(
        admin, node["id"], {"vcpus": 4, "stats": {"num_instances": 8, "num_tribbles": 1}})
    assert updated["vcpus"] == 4 and updated["service"]["host"] == "host1"
    assert {s["key"]: s["value"] for s in updated["stats"]} == \
        {"num_instances": "8", "num_proj_12345": "2", "num_tribbles": "1"}
    again = await db.compute_node_get(admin, node["id"])
    assert again["vcpus"] == 4 and len(again["stats"]) == 3


async def test_update_with_prune_keeps_the_same_stat_row(db, admin):
    _, node = await _node(db, admin, stats={"num_instances": 3, "num_proj_12345": 2})
    original = {s["key"]: s["id"] for s in node["stats"]}
    await db.compute_node_update(admin, node["id"], {"stats": {"num_instances": 1}},
                                 prune_stats=True)
    stats = (await db.compute_node_get(admin, node["id"]))["stats"]
    assert [(s["id"], s["key"], s["value"]) for s in stats] == \
        [(original["num_instances"], "num_instances", "1")]


async def test_prune_without_stats_removes_all(db, admin):
    _, node = await _node(db, admin, stats={"a": 1, "b": 2})
    result = await db.compute_node_update(admin, node["id"], {}, True)
    assert result["stats"] == []


async def test_update_of_missing_node_raises_and_changes_nothing(db, admin):
    with pytest.raises(exceptions.ComputeHostNotFound):
        await db.compute_node_update(admin, 999, {"vcpus": 1, "stats": {"x": 1}})


async def test_search_by_hypervisor_is_a_substring_match(db, admin):
    _, a = await _node(db, admin, host="h1", hypervisor_hostname="node-abc-1")
    _, b = await _node(db, admin, host="h2", hypervisor_hostname="node-xyz-2")
    found = await db.compute_node_search_by_hypervisor(admin, "abc")
    assert [n["id"] for n in found] == [a["id"]]
    assert found[0]["service"]["host"] == "h1" and "stats" not in found[0]
    assert len(await db.compute_node_search_by_hypervisor(admin, "node")) == 2
    assert b["id"]


async def test_get_by_host_ignores_deleted(db, admin):
    service, node = await _node(db, admin, host="h1")
    got = await db.compute_node_get_by_host(admin, "h1")
    assert got["id"] == node["id"] and "service" not in got
    assert await db.compute_node_get_by_host(admin, "nope") is None
    await db.service_destroy(admin, service["id"])
    assert await db.compute_node_get_by_host(get_admin_context("yes"), "h1") is None


async def test_statistics_sums_live_nodes(db, admin):
    empty = await db.compute_node_statistics(admin)
    assert empty == {k: 0 for k in empty} and set(empty) == {
        "count", "vcpus", "memory_mb", "local_gb", "vcpus_used", "memory_mb_used",
        "local_gb_used", "free_ram_mb", "free_disk_gb", "current_workload", "running_vms",
        "disk_available_least"}
    await _node(db, admin, host="a")
    await _node(db, admin, host="b", vcpus=6)
    s3, _ = await _node(db, admin, host="c", vcpus=100)
    await db.service_destroy(admin, s3["id"])
    stats = await db.compute_node_statistics(admin)
    assert stats["count"] == 2 and stats["vcpus"] == 8 and stats["memory_mb"] == 2048
    assert all(isinstance(v, int) for v in stats.values())


async def test_access(db, user):
    with pytest.raises(exceptions.AdminRequired):
        await db.compute_node_get_all(user)
    with pytest.raises(exceptions.ComputeHostNotFound):
        await db.compute_node_get(user, 1)
    assert (await db.compute_node_statistics(user))["count"] == 0
