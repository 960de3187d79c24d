"""Services (api-compute.md §3.2)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import false, func, select

from conductor.db.models import ComputeNode, Instance, Service, Volume
from conductor.db.query import equals, not_deleted
from conductor.db.session import Row, Session
from conductor.handlers import api, plain
from schemas import exceptions
from schemas.context import RequestContext

services = Service.__table__


async def _service(session: Session, context: RequestContext, service_id: Any,
                   joins: tuple[str, ...] = ()) -> Row:
    return await session.get(context, Service, "id", service_id,
                             lambda: exceptions.ServiceNotFound(service_id=service_id), joins)


@api
async def service_destroy(session: Session, context: RequestContext, instance_id: Any) -> None:
    # The parameter is a service id despite its name (Nova's signature).
    service = await _service(session, context, instance_id)
    await session.soft_delete(Service, service)
    if service["topic"] == "compute":
        nodes = await session.rows(
            session.query(context, ComputeNode, read_deleted="no")
            .where(ComputeNode.__table__.c.service_id == service["id"]))
        for node in nodes:
            await session.soft_delete(ComputeNode, node)


@api
async def service_get(session: Session, context: RequestContext, service_id: Any) -> Row:
    return await _service(session, context, service_id, ("compute_node",))


@api
async def service_get_by_host_and_topic(session: Session, context: RequestContext,
                                        host: Any, topic: Any) -> Row | None:
    return await session.first(context, Service, equals(services.c.host, host),
                               equals(services.c.topic, topic),
                               services.c.disabled == false(), read_deleted="no")


@api
async def service_get_all(session: Session, context: RequestContext,
                          disabled: Any = None) -> list[Row]:
    stmt = session.query(context, Service)
    if disabled is not None:
        stmt = stmt.where(services.c.disabled == bool(disabled))
    return await session.rows(stmt.order_by(services.c.id))


@api
async def service_get_all_by_topic(session: Session, context: RequestContext,
                                   topic: Any) -> list[Row]:
    return await session.all(context, Service, equals(services.c.topic, topic),
                             services.c.disabled == false(), read_deleted="no")


service_get_all_by_host = plain.rows("service_get_all_by_host", Service, "host",
                                     read_deleted="no")


@api
async def service_get_all_compute_by_host(session: Session, context: RequestContext,
                                          host: Any) -> list[Row]:
    return await session.all(context, Service, equals(services.c.host, host),
                             services.c.topic == "compute", joins=("compute_node",),
                             read_deleted="no",
                             missing=lambda: exceptions.ComputeHostNotFound(host=host))


async def _sorted_by_usage(session: Session, context: RequestContext, topic: str,
                           usage_table: Any, usage_column: Any) -> list[tuple[Row, int]]:
    usage = (select(usage_table.c.host.label("host"),
                    func.sum(usage_column).label("total"))
             .where(not_deleted(usage_table))
             .group_by(usage_table.c.host).subquery())
    total = func.coalesce(usage.c.total, 0)
    stmt = (select(services, total.label("_total"))
            .select_from(services.outerjoin(usage, usage.c.host == services.c.host))
            .where(not_deleted(services), services.c.disabled == false(),
                   services.c.topic == topic)
            .order_by(total, services.c.id))
    result = await session.execute(stmt)
    out = []
    for mapping in result.mappings():
        row = dict(mapping)
        out.append((row, int(row.pop("_total") or 0)))
    return out


@api
async def service_get_all_compute_sorted(session: Session,
                                         context: RequestContext) -> list[tuple[Row, int]]:
    instances = Instance.__table__
    return await _sorted_by_usage(session, context, "compute", instances, instances.c.vcpus)


@api
async def service_get_all_volume_sorted(session: Session,
                                        context: RequestContext) -> list[tuple[Row, int]]:
    volumes = Volume.__table__
    return await _sorted_by_usage(session, context, "volume", volumes, volumes.c.size)


service_get_by_args = plain.first("service_get_by_args", Service, "host", "binary",
                                  missing=exceptions.HostBinaryNotFound)


@api
async def service_create(session: Session, context: RequestContext, values: Any) -> Row:
    cols = session.check(Service, values)
    if not session.config.enable_new_services:
        cols["disabled"] = True
    return await session.insert(Service, cols, checked=True,
                                echo={k: v for k, v in (values or {}).items()
                                      if k != "disabled" or session.config.enable_new_services})


@api
async def service_update(session: Session, context: RequestContext, service_id: Any,
                         values: Any) -> None:
    service = await _service(session, context, service_id)
    await session.update(Service, service, values)
