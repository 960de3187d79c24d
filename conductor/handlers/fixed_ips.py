"""Fixed IPs (api-network-quota-storage.md §3.3).

Rows come back with their columns only.  Reads by id or address are "owner-checked"
(§1.2, mechanism 3): a user context may only see an address bound to an instance of its
own project.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import and_, false, or_, select, true, update

from conductor.db.base import utcnow
from conductor.db.models import FixedIp, Instance, Network
from conductor.db.query import (
    authorize_project,
    equals,
    is_user_context,
    is_uuid_like,
    model_query,
    not_deleted,
)
from conductor.db.session import Row, Session
from conductor.db.values import convert
from conductor.handlers import api, plain
from schemas import exceptions
from schemas.context import RequestContext

fixed_ips = FixedIp.__table__
instances = Instance.__table__
networks = Network.__table__


def _require_uuid(value: Any) -> None:
    # This family raises InvalidUUID with the ``uuid`` kwarg (§3.3), unlike
    # conductor.db.query.require_uuid, which follows the compute family's message form.
    if not isinstance(value, str) or not is_uuid_like(value):
        raise exceptions.InvalidUUID(uuid=value)


async def check_owner(session: Session, context: RequestContext, row: Row) -> None:
    """A user context may touch a fixed IP only if its instance (deleted or not) is
    its project's (api-network-quota-storage.md §1.2, mechanism 3)."""
    if not is_user_context(context) or row["instance_uuid"] is None:
        return
    project = await session.execute(
        select(instances.c.project_id).where(instances.c.uuid == row["instance_uuid"])
        .order_by(instances.c.id).limit(1))
    found = project.first()
    if found is None:
        raise exceptions.InstanceNotFound(instance_id=row["instance_uuid"])
    authorize_project(context, found.project_id)


async def _owner_checked(session: Session, context: RequestContext, column: str, value: Any,
                         missing: Callable[[], Exception]) -> Row:
    # The owner check answers NotAuthorized for another project's address: an entry's
    # own check stands under strict isolation (api-compute.md §1.1 "Isolation"), so this
    # lookup is the entry's, not isolated (check_owner is stricter than not-found).
    row = await session.one(model_query(context, FixedIp)
                            .where(equals(fixed_ips.c[column], value))
                            .order_by(fixed_ips.c.id).limit(1), missing)
    await check_owner(session, context, row)
    return row


@api
async def fixed_ip_get_by_address(session: Session, context: RequestContext,
                                  address: Any) -> Row:
    """Context read_deleted, owner checked (also for the floating IP functions)."""
    return await _owner_checked(session, context, "address", address,
                                lambda: exceptions.FixedIpNotFoundForAddress(address=address))


def _network_or_none(network_id: Any) -> Any:
    return or_(equals(fixed_ips.c.network_id, network_id), fixed_ips.c.network_id.is_(None))


@api
async def fixed_ip_associate(session: Session, context: RequestContext, address: Any,
                             instance_uuid: Any, network_id: Any = None,
                             reserved: Any = False) -> Any:
    _require_uuid(instance_uuid)
    # An exact address: the lock blocks (§1.10), so a second caller sees the winner's
    # instance and gets FixedIpAlreadyInUse.
    row = await session.first(
        context, FixedIp, equals(fixed_ips.c.address, address),
        equals(fixed_ips.c.reserved, reserved), _network_or_none(network_id),
        read_deleted="no", lock=True,
        missing=lambda: exceptions.FixedIpNotFoundForNetwork(address=address,
                                                              network_id=network_id))
    if row["instance_uuid"]:
        raise exceptions.FixedIpAlreadyInUse(address=address)
    values: dict[str, Any] = {"instance_uuid": instance_uuid}
    if row["network_id"] is None:
        values["network_id"] = network_id
    await session.update(FixedIp, row, values)
    return row["address"]


@api
async def fixed_ip_associate_pool(session: Session, context: RequestContext, network_id: Any,
                                  instance_uuid: Any = None, host: Any = None) -> Any:
    if instance_uuid:
        _require_uuid(instance_uuid)
    row = await session.pick(
        session.query(context, FixedIp, read_deleted="no")
        .where(_network_or_none(network_id), fixed_ips.c.reserved == false(),
               fixed_ips.c.instance_uuid.is_(None), fixed_ips.c.host.is_(None))
        .order_by(fixed_ips.c.id), exceptions.NoMoreFixedIps)
    values: dict[str, Any] = {}
    if row["network_id"] is None:
        values["network_id"] = network_id
    if instance_uuid:
        values["instance_uuid"] = instance_uuid
    if host:
        values["host"] = host
    await session.update(FixedIp, row, values)
    return row["address"]


@api
async def fixed_ip_create(session: Session, context: RequestContext, values: Any) -> Any:
    row = await session.insert(FixedIp, values, echo=values, creator=context,
                               refused=lambda: exceptions.InstanceNotFound(
                                   instance_id=values.get("instance_uuid")))
    return row["address"]


@api
async def fixed_ip_bulk_create(session: Session, context: RequestContext, ips: Any) -> None:
    if not isinstance(ips, (list, tuple)):
        raise exceptions.InvalidInput(reason="fixed_ip_bulk_create: ips must be a list of "
                                      "dicts")
    # Every row is checked before the first is written.
    rows = [session.check(FixedIp, ip) for ip in ips]
    for row in rows:
        await session.insert(FixedIp, row, checked=True)


@api
async def fixed_ip_disassociate(session: Session, context: RequestContext,
                                address: Any) -> None:
    row = await fixed_ip_get_by_address(session, context, address)
    await session.update(FixedIp, row, {"instance_uuid": None})


@api
async def fixed_ip_disassociate_all_by_timeout(session: Session, context: RequestContext,
                                               host: Any, time: Any) -> int:
    cutoff = convert(fixed_ips, fixed_ips.c.updated_at, time)
    if cutoff is None:
        return 0  # ``updated_at < NULL`` holds for no row
    # Inner joins: a row with no network or no instance row never qualifies; deleted
    # networks and instances still count.
    stale = (select(fixed_ips.c.id)
             .select_from(fixed_ips
                          .join(networks, networks.c.id == fixed_ips.c.network_id)
                          .join(instances, instances.c.uuid == fixed_ips.c.instance_uuid))
             .where(not_deleted(fixed_ips), fixed_ips.c.allocated == false(),
                    fixed_ips.c.updated_at < cutoff,
                    or_(equals(networks.c.host, host),
                        and_(equals(instances.c.host, host),
                             networks.c.multi_host == true()))))
    result = await session.execute(
        update(fixed_ips).where(fixed_ips.c.id.in_(stale))
        .values(instance_uuid=None, leased=False, updated_at=utcnow()))
    return int(result.rowcount)


@api
async def fixed_ip_get(session: Session, context: RequestContext, id: Any) -> Row:
    return await _owner_checked(session, context, "id", id,
                                lambda: exceptions.FixedIpNotFound(id=id))


fixed_ip_get_all = plain.rows("fixed_ip_get_all", FixedIp, read_deleted="yes",
                              missing=exceptions.NoFixedIpsDefined)


@api
async def fixed_ip_get_by_instance(session: Session, context: RequestContext,
                                   instance_uuid: Any) -> list[Row]:
    _require_uuid(instance_uuid)
    return await session.all(
        context, FixedIp, fixed_ips.c.instance_uuid == instance_uuid, read_deleted="no",
        missing=lambda: exceptions.FixedIpNotFoundForInstance(instance_uuid=instance_uuid))


# Despite its name the network_uuid parameter is the integer network id (§3.3).
fixed_ip_get_by_network_host = plain.first(
    "fixed_ip_get_by_network_host", FixedIp, "network_id", "host", read_deleted="no",
    missing=lambda network_uuid, host: (
        exceptions.FixedIpNotFoundForNetworkHost(network_id=network_uuid, host=host)))
fixed_ips_by_virtual_interface = plain.rows("fixed_ips_by_virtual_interface", FixedIp,
                                            "virtual_interface_id", read_deleted="no")


@api
async def fixed_ip_get_network(session: Session, context: RequestContext,
                               address: Any) -> Row | None:
    fixed = await fixed_ip_get_by_address(session, context, address)
    if fixed["network_id"] is None:
        return None
    return await session.row(select(networks).where(networks.c.id == fixed["network_id"]))


@api
async def fixed_ip_update(session: Session, context: RequestContext, address: Any,
                          values: Any) -> None:
    row = await fixed_ip_get_by_address(session, context, address)
    await session.update(FixedIp, row, values)
