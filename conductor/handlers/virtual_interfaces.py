"""Virtual interfaces (api-network-quota-storage.md §3.4).

Every reader sees deleted rows too, whatever the context says; deletes are hard.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import exc as sa_exc

from conductor.db.models import VirtualInterface
from conductor.db.session import Row, Session
from conductor.db.values import lookup_int
from conductor.handlers import api, plain
from conductor.handlers.instances import load_by_uuid
from schemas import exceptions
from schemas.context import RequestContext

vifs = VirtualInterface.__table__


async def _instance_uuid(session: Session, context: RequestContext, instance_id: Any) -> Any:
    # The existence check of instance_get_by_uuid (read_deleted, project scoping).
    instance = await load_by_uuid(session, context, instance_id, (), bare=True)
    return instance["uuid"]


@api
async def virtual_interface_create(session: Session, context: RequestContext,
                                   values: Any) -> Row:
    if isinstance(values, dict) and "instance_uuid" in values \
            and values["instance_uuid"] is None:
        # NOT NULL: an integrity failure like a missing instance_uuid, not bad input.
        raise exceptions.VirtualInterfaceCreateException()
    cols = session.check(VirtualInterface, values)
    try:
        return await session.insert(VirtualInterface, cols, checked=True, echo=values,
                                    creator=context, refused=lambda: exceptions.InstanceNotFound(
                                        instance_id=cols.get("instance_uuid")))
    except sa_exc.IntegrityError:
        # Callers catch this and retry with a new MAC (duplicate address), on every
        # backend; the failed statement's transaction is rolled back by the dispatcher.
        raise exceptions.VirtualInterfaceCreateException() from None


@api
async def virtual_interface_get(session: Session, context: RequestContext,
                                vif_id: Any) -> Row | None:
    return await session.get_by(context, VirtualInterface, "id", vif_id, read_deleted="yes")


virtual_interface_get_by_address = plain.first("virtual_interface_get_by_address",
                                               VirtualInterface, "address", read_deleted="yes")
virtual_interface_get_by_uuid = plain.first("virtual_interface_get_by_uuid", VirtualInterface,
                                            "uuid", read_deleted="yes")


@api
async def virtual_interface_get_by_instance(session: Session, context: RequestContext,
                                            instance_id: Any) -> list[Row]:
    uuid = await _instance_uuid(session, context, instance_id)
    return await session.all(context, VirtualInterface, vifs.c.instance_uuid == uuid,
                             read_deleted="yes")


# instance_id is the instance's uuid here (Nova's name)
virtual_interface_get_by_instance_and_network = plain.first(
    "virtual_interface_get_by_instance_and_network", VirtualInterface, "instance_uuid",
    "network_id", read_deleted="yes")


@api
async def virtual_interface_delete(session: Session, context: RequestContext,
                                   vif_id: Any) -> None:
    key = lookup_int(vif_id)
    if key is not None:  # an unknown id is a no-op (DEFECT→ 8)
        # another project's interface is left alone, as if missing
        await session.hard_delete_where(VirtualInterface, vifs.c.id == key,
                                        *session.visible(context, VirtualInterface))


@api
async def virtual_interface_delete_by_instance(session: Session, context: RequestContext,
                                               instance_id: Any) -> None:
    uuid = await _instance_uuid(session, context, instance_id)
    await session.hard_delete_where(VirtualInterface, vifs.c.instance_uuid == uuid)


virtual_interface_get_all = plain.rows("virtual_interface_get_all", VirtualInterface,
                                       read_deleted="yes")
