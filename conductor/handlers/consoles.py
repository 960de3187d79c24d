"""Console pools and consoles (api-compute.md §3.14).

None of these checks the context.  Pools are looked up live only; consoles are looked up
deleted or not, and are hard-deleted (they are transient).
"""

from __future__ import annotations

from typing import Any

from conductor.db.models import Console, ConsolePool
from conductor.db.query import equals, key_equals
from conductor.db.session import Row, Session
from conductor.handlers import api, plain
from schemas import exceptions
from schemas.context import RequestContext

pools = ConsolePool.__table__
consoles = Console.__table__

console_pool_create = plain.create("console_pool_create", ConsolePool)
console_pool_get_by_host_type = plain.first(
    "console_pool_get_by_host_type", ConsolePool, "compute_host", "host", "console_type",
    read_deleted="no", joins=("consoles",),
    missing=lambda compute_host, proxy_host, console_type: (
        exceptions.ConsolePoolNotFoundForHostType(host=proxy_host, console_type=console_type,
                                                  compute_host=compute_host)))
console_pool_get_all_by_host_type = plain.rows(
    "console_pool_get_all_by_host_type", ConsolePool, "host", "console_type",
    joins=("consoles",), read_deleted="no")
console_create = plain.create("console_create", Console)
console_delete = plain.destroy("console_delete", Console, hard=True)
console_get_by_pool_instance = plain.first(
    "console_get_by_pool_instance", Console, "pool_id", "instance_uuid", read_deleted="yes",
    joins=("pool",), missing=exceptions.ConsoleNotFoundInPoolForInstance)
console_get_all_by_instance = plain.rows("console_get_all_by_instance", Console,
                                         "instance_uuid", read_deleted="yes")


@api
async def console_get(session: Session, context: RequestContext, console_id: Any,
                      instance_uuid: Any = None) -> Row:
    where = [key_equals(consoles.c.id, console_id)]
    if instance_uuid is not None:
        where.append(equals(consoles.c.instance_uuid, instance_uuid))

    def missing() -> Exception:
        # the filter applies for any non-None uuid, the error names it only when truthy
        if instance_uuid:
            return exceptions.ConsoleNotFoundForInstance(console_id=console_id,
                                                         instance_uuid=instance_uuid)
        return exceptions.ConsoleNotFound(console_id=console_id)
    return await session.first(context, Console, *where, joins=("pool",), read_deleted="yes",
                               missing=missing)
