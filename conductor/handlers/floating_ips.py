"""Floating IPs (api-network-quota-storage.md §3.1).

Rows come back with columns only.  Where a function needs a fixed IP (association, the
by-fixed-address lookup) it loads it as the fixed-IP functions do, owner check (§1.2.3)
included.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import Select, false, func, insert, update

from conductor.db.base import utcnow
from conductor.db.models import FixedIp, FloatingIp
from conductor.db.query import (
    authorize_project,
    deleted_filter,
    equals,
    model_query,
    one_of,
)
from conductor.db.session import Row, Session
from conductor.handlers import api, fixed_ips, plain
from schemas import exceptions
from schemas.context import RequestContext

floating = FloatingIp.__table__
fixed = FixedIp.__table__

_DESTROY_CHUNK = 256  # addresses per UPDATE in floating_ip_bulk_destroy (spec §3.1)


# --- lookups with the owner checks of §1.2.3 ---------------------------------------------

@api
async def floating_ip_get_by_address(session: Session, context: RequestContext,
                                     address: Any) -> Row:
    # the entry's owner check answers NotAuthorized for another project's address
    # (api-compute.md §1.1 "Isolation": an entry's own check stands), so this lookup
    # is not isolated: the check below is stricter than isolation's not-found
    row = await session.one(model_query(context, FloatingIp)
                            .where(equals(floating.c.address, address))
                            .order_by(floating.c.id).limit(1),
                            lambda: exceptions.FloatingIpNotFoundForAddress(address=address))
    if row["project_id"] is not None:  # an unallocated address is anyone's
        authorize_project(context, row["project_id"])
    return row


def _live(session: Session, context: RequestContext) -> Select[Any]:
    return session.query(context, FloatingIp, read_deleted="no")


# --- reads -------------------------------------------------------------------------------

@api
async def floating_ip_get(session: Session, context: RequestContext, id: Any) -> Row:
    return await session.get(context, FloatingIp, "id", id,
                             lambda: exceptions.FloatingIpNotFound(id=id), project_only=True)


@api
async def floating_ip_get_pools(session: Session, context: RequestContext) -> list[Row]:
    pools = await session.scalars(session.query(context, FloatingIp)
                                  .with_only_columns(floating.c.pool).distinct())
    # NULL first, then by name: PostgreSQL and SQLite sort NULL differently.
    return [{"name": p} for p in sorted(pools, key=lambda p: (p is not None, p or ""))]


@api
async def floating_ip_count_by_project(session: Session, context: RequestContext,
                                       project_id: Any) -> int:
    authorize_project(context, project_id)
    count = await session.scalar(
        _live(session, context).with_only_columns(func.count(floating.c.id))
        .where(equals(floating.c.project_id, project_id),
               floating.c.auto_assigned == false()))
    return int(count or 0)


floating_ip_get_all = plain.rows("floating_ip_get_all", FloatingIp, read_deleted="no",
                                 missing=exceptions.NoFloatingIpsDefined)
floating_ip_get_all_by_host = plain.rows("floating_ip_get_all_by_host", FloatingIp, "host",
                                         read_deleted="no",
                                         missing=exceptions.FloatingIpNotFoundForHost)


@api
async def floating_ip_get_all_by_project(session: Session, context: RequestContext,
                                         project_id: Any) -> list[Row]:
    authorize_project(context, project_id)
    return await session.all(context, FloatingIp, equals(floating.c.project_id, project_id),
                             floating.c.auto_assigned == false(), read_deleted="no")


@api
async def floating_ip_get_by_fixed_address(session: Session, context: RequestContext,
                                           fixed_address: Any) -> list[Row]:
    fixed_ip = await fixed_ips.fixed_ip_get_by_address(session, context, fixed_address)
    return await session.all(context, FloatingIp, floating.c.fixed_ip_id == fixed_ip["id"])


floating_ip_get_by_fixed_ip_id = plain.rows("floating_ip_get_by_fixed_ip_id", FloatingIp,
                                            "fixed_ip_id")


# --- creation and removal ----------------------------------------------------------------

@api
async def floating_ip_allocate_address(session: Session, context: RequestContext,
                                       project_id: Any, pool: Any) -> Any:
    authorize_project(context, project_id)
    row = await session.pick(_live(session, context)
                             .where(floating.c.fixed_ip_id.is_(None),
                                    floating.c.project_id.is_(None), equals(floating.c.pool, pool))
                             .order_by(floating.c.id), exceptions.NoMoreFloatingIps)
    await session.update(FloatingIp, row, {"project_id": project_id})
    return row["address"]


@api
async def floating_ip_create(session: Session, context: RequestContext, values: Any) -> Any:
    cols = session.check(FloatingIp, values)
    if not cols.get("deleted"):
        try:
            existing = await floating_ip_get_by_address(session, context, cols.get("address"))
        except exceptions.FloatingIpNotFoundForAddress:
            existing = None
        if existing is not None and existing["id"] != cols.get("id"):
            # Nova reports the row it was about to save: unset columns are None there.
            raise exceptions.FloatingIpExists(**{c: cols.get(c) for c in floating.c.keys()})
    row = await session.insert(FloatingIp, cols, checked=True, echo=values, creator=context)
    return row["address"]


def _items(name: str, ips: Any) -> list[dict[Any, Any]]:
    if not isinstance(ips, (list, tuple)) or not all(isinstance(i, dict) for i in ips):
        raise exceptions.InvalidInput(reason=f"{name}: ips must be a list of dicts")
    return list(ips)


def _runs(rows: list[Row]) -> Iterator[list[Row]]:
    """Consecutive rows with the same keys (one executemany each), in order."""
    run: list[Row] = []
    for row in rows:
        if run and row.keys() != run[0].keys():
            yield run
            run = []
        run.append(row)
    if run:
        yield run


@api
async def floating_ip_bulk_create(session: Session, context: RequestContext,
                                  ips: Any) -> None:
    existing: dict[Any, Row] = {}
    for row in await session.all(context, FloatingIp, read_deleted="no"):
        existing.setdefault(row["address"], row)
    new_rows = []
    for item in _items("floating_ip_bulk_create", ips):
        cols = session.check(FloatingIp, item)
        found = existing.get(cols.get("address"))
        if found is not None and cols.get("id") != found["id"]:
            raise exceptions.FloatingIpExists(**found)
        new_rows.append(cols)
    for run in _runs(new_rows):
        if "id" in run[0]:
            for cols in run:  # session.insert moves the id sequence past forced ids
                await session.insert(FloatingIp, cols, checked=True)
        else:
            await session.execute(insert(floating), run)


@api
async def floating_ip_bulk_destroy(session: Session, context: RequestContext,
                                   ips: Any) -> None:
    items = _items("floating_ip_bulk_destroy", ips)
    if not all("address" in i for i in items):
        raise exceptions.InvalidInput(reason="floating_ip_bulk_destroy: every item needs "
                                      "an 'address'")
    # SQL IN: a None address matches no row.
    addresses = [i["address"] for i in items if i["address"] is not None]
    visible = deleted_filter(floating, context.read_deleted)
    now = utcnow()
    for start in range(0, len(addresses), _DESTROY_CHUNK):
        stmt = update(floating).where(
            one_of(floating.c.address, addresses[start:start + _DESTROY_CHUNK]))
        if visible is not None:
            stmt = stmt.where(visible)
        # another project's addresses are left alone, as floating_ip_destroy refuses them
        stmt = stmt.where(*session.visible(context, FloatingIp))
        # updated_at moves with the UPDATE (spec: "updated_at becomes now")
        await session.execute(stmt.values(deleted=True, deleted_at=now))


@api
async def floating_ip_destroy(session: Session, context: RequestContext,
                              address: Any) -> None:
    row = await floating_ip_get_by_address(session, context, address)
    await session.soft_delete(FloatingIp, row)


# --- changes to one address --------------------------------------------------------------

@api
async def floating_ip_deallocate(session: Session, context: RequestContext,
                                 address: Any) -> None:
    row = await floating_ip_get_by_address(session, context, address)
    await session.update(FloatingIp, row, {"project_id": None, "host": None,
                                           "auto_assigned": False}, checked=True)


@api
async def floating_ip_disassociate(session: Session, context: RequestContext,
                                   address: Any) -> Any:
    row = await floating_ip_get_by_address(session, context, address)
    fixed_ip = await fixed_ips.fixed_ip_get(session, context, row["fixed_ip_id"])
    await session.update(FloatingIp, row, {"fixed_ip_id": None, "host": None}, checked=True)
    return fixed_ip["address"]


@api
async def floating_ip_fixed_ip_associate(session: Session, context: RequestContext,
                                         floating_address: Any, fixed_address: Any,
                                         host: Any) -> None:
    row = await floating_ip_get_by_address(session, context, floating_address)
    fixed_ip = await fixed_ips.fixed_ip_get_by_address(session, context, fixed_address)
    await session.update(FloatingIp, row, {"fixed_ip_id": fixed_ip["id"], "host": host})


@api
async def floating_ip_update(session: Session, context: RequestContext, address: Any,
                             values: Any) -> None:
    row = await floating_ip_get_by_address(session, context, address)
    await session.update(FloatingIp, row, values)


@api
async def floating_ip_set_auto_assigned(session: Session, context: RequestContext,
                                        address: Any) -> None:
    row = await floating_ip_get_by_address(session, context, address)
    await session.update(FloatingIp, row, {"auto_assigned": True}, checked=True)
