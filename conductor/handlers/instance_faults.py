"""Instance faults (api-compute.md §3.10)."""

from __future__ import annotations

from typing import Any

from conductor.db.models import InstanceFault
from conductor.db.session import Row, Session
from conductor.db.values import lookup_text
from conductor.handlers import api
from schemas import exceptions
from schemas.context import RequestContext

faults = InstanceFault.__table__


@api
async def instance_fault_create(session: Session, context: RequestContext,
                                values: Any) -> Row:
    # The instance is deliberately not looked up: faults for unknown uuids are accepted.
    return await session.insert(InstanceFault, values, echo=values, creator=context,
                                refused=lambda: exceptions.InstanceNotFound(
                                    instance_id=values.get("instance_uuid")))


@api
async def instance_fault_get_by_instance_uuids(session: Session, context: RequestContext,
                                               instance_uuids: Any) -> dict[Any, list[Row]]:
    if not isinstance(instance_uuids, (list, tuple)):
        raise exceptions.InvalidInput(reason="instance_fault_get_by_instance_uuids: "
                                      "instance_uuids must be a list")
    output: dict[Any, list[Row]] = {uuid: [] for uuid in instance_uuids}
    # stored text -> the key the caller used for it
    keys = {text: uuid for uuid in instance_uuids
            if (text := lookup_text(uuid)) is not None}
    if not keys:
        return output
    rows = await session.rows(
        session.query(context, InstanceFault, read_deleted="no")
        .where(faults.c.instance_uuid.in_(list(keys)))
        .order_by(faults.c.created_at.desc(), faults.c.id.desc()))
    for row in rows:
        output[keys[row["instance_uuid"]]].append(row)
    return output
