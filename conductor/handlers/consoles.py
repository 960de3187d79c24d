"""Console pools and consoles (api-compute.md §3.14).

None of these checks the context.  Pools are looked up live only; consoles are looked up
deleted or not, and are hard-deleted (they are transient).
"""

from __future__ import annotations

from typing import Any

from conductor.db.models import Console, ConsolePool
from conductor.db.query import equals
from conductor.db.session import Row, Session
from conductor.db.values import lookup_int
from conductor.handlers import api
from schemas import exceptions
from schemas.context import RequestContext

pools = ConsolePool.__table__
consoles = Console.__table__


@api
async def console_pool_create(session: Session, context: RequestContext, values: Any) -> Row:
    return await session.insert(ConsolePool, session.check(ConsolePool, values),
                                checked=True, echo=values)


@api
async def console_pool_get_by_host_type(session: Session, context: RequestContext,
                                        compute_host: Any, proxy_host: Any,
                                        console_type: Any) -> Row:
    return await session.first(
        context, ConsolePool, equals(pools.c.host, proxy_host),
        equals(pools.c.console_type, console_type), equals(pools.c.compute_host, compute_host),
        joins=("consoles",), read_deleted="no",
        missing=lambda: exceptions.ConsolePoolNotFoundForHostType(
            host=proxy_host, console_type=console_type, compute_host=compute_host))


@api
async def console_pool_get_all_by_host_type(session: Session, context: RequestContext,
                                            host: Any, console_type: Any) -> list[Row]:
    return await session.all(context, ConsolePool, equals(pools.c.host, host),
                             equals(pools.c.console_type, console_type),
                             joins=("consoles",), read_deleted="no")


@api
async def console_create(session: Session, context: RequestContext, values: Any) -> Row:
    return await session.insert(Console, session.check(Console, values), checked=True,
                                echo=values)


@api
async def console_delete(session: Session, context: RequestContext, console_id: Any) -> None:
    key = lookup_int(console_id)
    if key is not None:
        await session.hard_delete_where(Console, consoles.c.id == key)


@api
async def console_get_by_pool_instance(session: Session, context: RequestContext,
                                       pool_id: Any, instance_uuid: Any) -> Row:
    return await session.first(
        context, Console, equals(consoles.c.pool_id, pool_id),
        equals(consoles.c.instance_uuid, instance_uuid), joins=("pool",), read_deleted="yes",
        missing=lambda: exceptions.ConsoleNotFoundInPoolForInstance(
            pool_id=pool_id, instance_uuid=instance_uuid))


@api
async def console_get_all_by_instance(session: Session, context: RequestContext,
                                      instance_uuid: Any) -> list[Row]:
    return await session.all(context, Console, equals(consoles.c.instance_uuid, instance_uuid),
                             read_deleted="yes")


@api
async def console_get(session: Session, context: RequestContext, console_id: Any,
                      instance_uuid: Any = None) -> Row:
    key = lookup_int(console_id)
    row = None
    if key is not None:
        stmt = session.query(context, Console, read_deleted="yes").where(consoles.c.id == key)
        if instance_uuid is not None:
            stmt = stmt.where(equals(consoles.c.instance_uuid, instance_uuid))
        row = await session.row(stmt, ("pool",))
    if row is None:
        # the filter applies for any non-None uuid, the error names it only when truthy
        if instance_uuid:
            raise exceptions.ConsoleNotFoundForInstance(console_id=console_id,
                                                        instance_uuid=instance_uuid)
        raise exceptions.ConsoleNotFound(console_id=console_id)
    return row
