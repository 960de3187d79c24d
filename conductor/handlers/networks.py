"""Networks (api-network-quota-storage.md §3.5) and ``project_get_networks`` (§3.6).

Network rows come back with their columns only.
"""

from __future__ import annotations

import uuid as uuid_module
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, false, func, or_, select, true

from conductor.db.models import FixedIp, Instance, Network, VirtualInterface
from conductor.db.query import ProjectOnly, equals, not_deleted, one_of, require_admin
from conductor.db.session import Row, Session
from conductor.db.values import lookup_int, lookup_text
from conductor.handlers import api, plain
from schemas import exceptions
from schemas.context import RequestContext

networks = Network.__table__
fixed_ips = FixedIp.__table__
instances = Instance.__table__
vifs = VirtualInterface.__table__

def _id_is(network_id: Any) -> ColumnElement[bool]:
    key = lookup_int(network_id)
    return networks.c.id == key if key is not None else false()


@api
async def network_get(session: Session, context: RequestContext, network_id: Any,
                      project_only: ProjectOnly = "allow_none", *, lock: bool = False) -> Row:
    return await session.get(context, Network, "id", network_id,
                             lambda: exceptions.NetworkNotFound(network_id=network_id),
                             project_only=project_only, lock=lock)


def _live() -> Select[Any]:
    return select(networks).where(not_deleted(networks))


async def _first(session: Session, *where: ColumnElement[bool]) -> Row | None:
    return await session.row(_live().where(*where).order_by(networks.c.id).limit(1))


async def _associate(session: Session, context: RequestContext, project_id: Any,
                     network_id: Any = None, force: Any = False) -> Row:
    # network_associate inside the caller's transaction; the caller checks admin.
    if not force:
        # Two first-time builds of one project must not claim two networks: the second
        # waits here and then finds the first one's network.
        await session.lock("network_associate", lookup_text(project_id) or "")
        owned = await session.row(_live().where(equals(networks.c.project_id, project_id))
                                  .order_by(networks.c.id).limit(1).with_for_update())
        if owned is not None:
            return owned
    free = _live().where(networks.c.project_id.is_(None)).order_by(networks.c.id).limit(1)
    if network_id is not None:
        # A named network is an exact row: wait for a competitor, then re-check it.
        network = await session.one(free.where(_id_is(network_id)), exceptions.NoMoreNetworks,
                                    lock=True)
    else:
        network = await session.pick(free, exceptions.NoMoreNetworks)
    return await session.update(Network, network, {"project_id": project_id})


@api
async def network_associate(session: Session, context: RequestContext, project_id: Any,
                            network_id: Any = None, force: Any = False) -> Row:
    return await _associate(session, context, project_id, network_id, force)


@api
async def network_count(session: Session, context: RequestContext) -> int:
    stmt = session.query(context, Network).with_only_columns(func.count(),
                                                           maintain_column_froms=True)
    return int(await session.scalar(stmt))


@api
async def network_count_reserved_ips(session: Session, context: RequestContext,
                                     network_id: Any) -> int:
    return int(await session.scalar(
        select(func.count()).select_from(fixed_ips)
        .where(not_deleted(fixed_ips), fixed_ips.c.reserved == true(),
               equals(fixed_ips.c.network_id, network_id))))


@api
async def network_create_safe(session: Session, context: RequestContext,
                              values: Any) -> Row | None:
    if not isinstance(values, dict):
        raise exceptions.InvalidInput(reason="network_create_safe: values must be a dict")
    vlan = values.get("vlan")
    if vlan:
        # Closes the check-then-insert race of two creates with one vlan.
        await session.lock("network_vlan", lookup_text(vlan) or "")
        if await _first(session, equals(networks.c.vlan, vlan)) is not None:
            raise exceptions.DuplicateVlan(vlan=vlan)
    given = {"uuid": str(uuid_module.uuid4()), **values}
    return await session.insert_or_skip(Network, given, echo=given)


@api
async def network_delete_safe(session: Session, context: RequestContext,
                              network_id: Any) -> None:
    of_network = and_(not_deleted(fixed_ips),
                      equals(fixed_ips.c.network_id, network_id))
    in_use = await session.scalar(select(fixed_ips.c.id)
                                  .where(of_network, fixed_ips.c.allocated == true())
                                  .limit(1))
    if in_use is not None:
        raise exceptions.NetworkInUse(network_id=network_id)
    # Locked, so that a concurrent delete of the same network waits and then finds none.
    network = await network_get(session, context, network_id, lock=True)
    await session.soft_delete_where(FixedIp, of_network)
    await session.hard_delete_where(Network, networks.c.id == network["id"])


@api
async def network_create_fixed_ips(session: Session, context: RequestContext,
                                   network_id: Any, num_vpn_clients: Any) -> None:
    raise NotImplementedError("network_create_fixed_ips is declared but not implemented "
                              "in Nova 2012.2")


@api
async def network_disassociate(session: Session, context: RequestContext,
                               network_id: Any) -> None:
    network = await network_get(session, context, network_id)
    await session.update(Network, network, {"project_id": None, "host": None})


@api
async def network_get_all(session: Session, context: RequestContext) -> list[Row]:
    return await session.rows(_live().order_by(networks.c.id),
                              missing=exceptions.NoNetworksFound)


@api
async def network_get_all_by_uuids(session: Session, context: RequestContext,
                                   network_uuids: Any,
                                   project_only: Any = "allow_none") -> list[Row]:
    if not isinstance(network_uuids, (list, tuple)):
        raise exceptions.InvalidInput(reason="network_get_all_by_uuids: network_uuids "
                                      "must be a list")
    # SQL IN: a None in the list matches no row.
    wanted = [u for u in network_uuids if u is not None]
    rows = await session.all(context, Network, one_of(networks.c.uuid, wanted),
                             read_deleted="no", project_only=project_only,
                             missing=exceptions.NoNetworksFound)
    found = [r["uuid"] for r in rows]
    for network_uuid in network_uuids:
        if network_uuid not in found:
            if project_only:
                raise exceptions.NetworkNotFoundForProject(network_uuid=network_uuid,
                                                           project_id=context.project_id)
            raise exceptions.NetworkNotFound(network_id=network_uuid)
    return rows


@api
async def network_get_associated_fixed_ips(session: Session, context: RequestContext,
                                           network_id: Any, host: Any = None) -> list[Row]:
    stmt = (select(fixed_ips.c.address, fixed_ips.c.instance_uuid, fixed_ips.c.network_id,
                   vifs.c.id.label("vif_id"), vifs.c.address.label("vif_address"),
                   instances.c.hostname.label("instance_hostname"),
                   instances.c.updated_at.label("instance_updated"),
                   instances.c.created_at.label("instance_created"))
            .select_from(fixed_ips
                         .join(vifs, and_(vifs.c.id == fixed_ips.c.virtual_interface_id,
                                          not_deleted(vifs)))
                         .join(instances, and_(instances.c.uuid == fixed_ips.c.instance_uuid,
                                               not_deleted(instances))))
            .where(not_deleted(fixed_ips), equals(fixed_ips.c.network_id, network_id),
                   fixed_ips.c.allocated == true())
            .order_by(fixed_ips.c.id))
    if host:
        stmt = stmt.where(equals(instances.c.host, host))
    return [dict(m) for m in (await session.execute(stmt)).mappings()]


async def _first_or(session: Session, error: Exception, *where: ColumnElement[bool]) -> Row:
    row = await _first(session, *where)
    if row is None:
        raise error
    return row


@api
async def network_get_by_bridge(session: Session, context: RequestContext,
                                bridge: Any) -> Row:
    return await _first_or(session, exceptions.NetworkNotFoundForBridge(bridge=bridge),
                           equals(networks.c.bridge, bridge))


@api
async def network_get_by_uuid(session: Session, context: RequestContext, uuid: Any) -> Row:
    return await _first_or(session, exceptions.NetworkNotFoundForUUID(uuid=uuid),
                           equals(networks.c.uuid, uuid))


@api
async def network_get_by_cidr(session: Session, context: RequestContext, cidr: Any) -> Row:
    return await _first_or(session, exceptions.NetworkNotFoundForCidr(cidr=cidr),
                           or_(equals(networks.c.cidr, cidr), equals(networks.c.cidr_v6, cidr)))


def _of_instance(instance_id: Any) -> ColumnElement[bool]:
    # §7 item 3: the instance is named by its uuid and found through its fixed IPs.
    return networks.c.id.in_(select(fixed_ips.c.network_id).where(
        not_deleted(fixed_ips), equals(fixed_ips.c.instance_uuid, instance_id)))


@api
async def network_get_by_instance(session: Session, context: RequestContext,
                                  instance_id: Any) -> Row:
    return await _first_or(session,
                           exceptions.NetworkNotFoundForInstance(instance_id=instance_id),
                           _of_instance(instance_id))


@api
async def network_get_all_by_instance(session: Session, context: RequestContext,
                                      instance_id: Any) -> list[Row]:
    return await session.rows(
        _live().where(_of_instance(instance_id)).order_by(networks.c.id),
        missing=lambda: exceptions.NetworkNotFoundForInstance(instance_id=instance_id))


@api
async def network_get_all_by_host(session: Session, context: RequestContext,
                                  host: Any) -> list[Row]:
    with_host = session.query(context, FixedIp).where(equals(fixed_ips.c.host, host)) \
        .with_only_columns(fixed_ips.c.network_id)
    return await session.rows(_live().where(or_(equals(networks.c.host, host),
                                                networks.c.id.in_(with_host)))
                              .order_by(networks.c.id))


@api
async def network_get_index(session: Session, context: RequestContext,
                            network_id: Any) -> None:
    raise NotImplementedError("network_get_index is declared but not implemented in "
                              "Nova 2012.2")


@api
async def network_set_cidr(session: Session, context: RequestContext, network_id: Any,
                           cidr: Any) -> None:
    raise NotImplementedError("network_set_cidr is declared but not implemented in "
                              "Nova 2012.2")


@api
async def network_set_host(session: Session, context: RequestContext, network_id: Any,
                           host_id: Any) -> Any:
    # The lock blocks: a second claimant waits, then sees the winner's host.
    network = await session.one(_live().where(_id_is(network_id)),
                                lambda: exceptions.NetworkNotFound(network_id=network_id),
                                lock=True)
    if not network["host"]:
        await session.update(Network, network, {"host": host_id}, echo={"host": host_id})
    return network["host"]


network_update = plain.update("network_update", Network, network_get)


@api
async def project_get_networks(session: Session, context: RequestContext, project_id: Any,
                               associate: Any = True) -> list[Row]:
    session.own_project(context, project_id)
    rows = await session.rows(_live().where(equals(networks.c.project_id, project_id))
                              .order_by(networks.c.id))
    if rows or not associate:
        return rows
    # network_associate is admin-only even when reached from here (§1.1).
    require_admin(context)
    return [await _associate(session, context, project_id)]
