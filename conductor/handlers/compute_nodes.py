"""Compute nodes and their stats (api-compute.md §3.3)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from conductor.db.models import ComputeNode, ComputeNodeStat, Service
from conductor.db.query import equals, not_deleted
from conductor.db.session import Row, Session
from conductor.db.values import lookup_text
from conductor.handlers import api, plain
from schemas import exceptions
from schemas.context import RequestContext

nodes = ComputeNode.__table__
stats = ComputeNodeStat.__table__
services = Service.__table__

FULL = ("service", "stats")
STATISTICS = ("vcpus", "memory_mb", "local_gb", "vcpus_used", "memory_mb_used",
              "local_gb_used", "free_ram_mb", "free_disk_gb", "current_workload",
              "running_vms", "disk_available_least")


@api
async def compute_node_get(session: Session, context: RequestContext, compute_id: Any, *,
                           joins: tuple[str, ...] = FULL) -> Row:
    return await session.get(context, ComputeNode, "id", compute_id,
                             lambda: exceptions.ComputeHostNotFound(host=compute_id), joins)


def _stats_dict(values: Any) -> dict[str, Any]:
    found = values.get("stats") if isinstance(values, dict) else None
    if found is None:
        return {}
    if not isinstance(found, dict):
        raise exceptions.InvalidInput(reason="compute_nodes.stats must be a dict of "
                                      "key -> value")
    return found


def _stat_row(session: Session, key: Any, value: Any, node_id: int) -> Row:
    return session.check(ComputeNodeStat, {"key": key, "value": value,
                                           "compute_node_id": node_id})


compute_node_get_all = plain.rows("compute_node_get_all", ComputeNode, joins=FULL)


@api
async def compute_node_search_by_hypervisor(session: Session, context: RequestContext,
                                            hypervisor_match: Any) -> list[Row]:
    match = "" if hypervisor_match is None else lookup_text(hypervisor_match)
    if match is None:
        return []  # no hostname can contain it (e.g. NUL) or equal a dict
    pattern = f"%{match}%"
    return await session.all(context, ComputeNode, nodes.c.hypervisor_hostname.like(pattern),
                             joins=("service",))


@api
async def compute_node_create(session: Session, context: RequestContext, values: Any) -> Row:
    given = _stats_dict(values)
    node = await session.insert(ComputeNode, session.check(ComputeNode, values,
                                                           allowed_extra=("stats",)),
                                checked=True, echo=values)
    node["stats"] = []
    for key, value in given.items():
        stat = await session.insert(ComputeNodeStat, _stat_row(session, key, value,
                                                               node["id"]), checked=True)
        stat["value"] = value  # echoed as given (api-compute.md §1.5)
        node["stats"].append(stat)
    return node


@api
async def compute_node_update(session: Session, context: RequestContext, compute_id: Any,
                              values: Any, prune_stats: Any = False) -> Row:
    given = _stats_dict(values)
    node = await compute_node_get(session, context, compute_id, joins=("stats",))
    current = {s["key"]: s for s in node["stats"]}
    for key, value in given.items():
        checked = _stat_row(session, key, value, node["id"])
        if key in current:
            await session.update(ComputeNodeStat, current[key], {"value": checked["value"]},
                                 checked=True)
        else:
            await session.insert(ComputeNodeStat, checked, checked=True)
    if prune_stats:
        for key, stat in current.items():
            if key not in given:
                await session.soft_delete(ComputeNodeStat, stat, flag_only=True)
    del node["stats"]
    await session.update(ComputeNode, node,
                         session.check(ComputeNode, values, allowed_extra=("stats",)),
                         checked=True)
    await session.load(ComputeNode, [node], FULL)
    return node


@api
async def compute_node_get_by_host(session: Session, context: RequestContext,
                                   host: Any) -> Row | None:
    return await session.row(
        select(nodes).select_from(nodes.join(services, services.c.id == nodes.c.service_id))
        .where(not_deleted(nodes), not_deleted(services),
               equals(services.c.host, host))
        .order_by(nodes.c.id).limit(1))


@api
async def compute_node_statistics(session: Session, context: RequestContext) -> dict[str, int]:
    columns = [func.count(nodes.c.id).label("count")]
    columns += [func.sum(nodes.c[name]).label(name) for name in STATISTICS]
    result = await session.execute(select(*columns).where(not_deleted(nodes)))
    row = result.mappings().one()
    return {key: int(row[key] or 0) for key in ("count", *STATISTICS)}

