"""Reservations and the quota engine's database half (api-network-quota-storage.md §4.1,
§4.3-§4.6): ``quota_reserve``, ``reservation_commit``, ``reservation_rollback``,
``reservation_expire`` and the plain reservation accessors.

Lock order, everywhere: the project's usage rows (``FOR UPDATE``, ascending id), then its
reservations.  ``quota_reserve`` first takes a per-project advisory lock on PostgreSQL so
that two first-time calls cannot both create a usage row for the same resource (the
residual race §4.3 allows an implementation to close); SQLite runs one call at a time.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid as uuid_module
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import false, func, insert, select

from conductor.db.base import utcnow
from conductor.db.models import (
    FloatingIp,
    Quota,
    QuotaUsage,
    Reservation,
    SecurityGroup,
    Volume,
)
from conductor.db.query import authorize_project, equals, not_deleted, one_of
from conductor.db.session import Row, Session
from conductor.db.values import convert, lookup_int
from conductor.handlers import api
from conductor.handlers.instances import project_totals
from conductor.handlers.quotas import project_rows
from schemas import exceptions
from schemas.context import RequestContext

log = logging.getLogger(__name__)

usages = QuotaUsage.__table__
reservations = Reservation.__table__


Counts = dict[str, int]


# --- usage sync groups (§4.2) ------------------------------------------------------------

async def _sync_instances(session: Session, project_id: Any) -> Counts:
    count, cores, ram = await project_totals(session, project_id)
    return {"instances": count, "cores": cores, "ram": ram}


async def _sync_volumes(session: Session, project_id: Any) -> Counts:
    t = Volume.__table__
    count, size = (await session.execute(
        select(func.count(t.c.id), func.sum(t.c.size))
        .where(not_deleted(t), equals(t.c.project_id, project_id)))).one()
    return {"volumes": int(count or 0), "gigabytes": int(size or 0)}


async def _sync_floating_ips(session: Session, project_id: Any) -> Counts:
    t = FloatingIp.__table__
    count = await session.scalar(
        select(func.count(t.c.id)).where(not_deleted(t), t.c.auto_assigned == false(),
                                         equals(t.c.project_id, project_id)))
    return {"floating_ips": int(count or 0)}


async def _sync_security_groups(session: Session, project_id: Any) -> Counts:
    t = SecurityGroup.__table__
    count = await session.scalar(
        select(func.count(t.c.id)).where(not_deleted(t),
                                         equals(t.c.project_id, project_id)))
    return {"security_groups": int(count or 0)}


Sync = Callable[[Session, Any], Awaitable[Counts]]
_GROUPS: list[tuple[tuple[str, ...], Sync]] = [
    (("instances", "cores", "ram"), _sync_instances),
    (("volumes", "gigabytes"), _sync_volumes),
    (("floating_ips",), _sync_floating_ips),
    (("security_groups",), _sync_security_groups),
]
SYNC: dict[str, tuple[tuple[str, ...], Sync]] = {
    name: group for group in _GROUPS for name in group[0]}


# --- argument checks ---------------------------------------------------------------------

def _invalid(reason: str) -> exceptions.InvalidInput:
    return exceptions.InvalidInput(reason=f"quota_reserve: {reason}")


def _optional_int(name: str, value: Any, *, big: bool = False) -> int | None:
    if value is None:
        return None
    out = lookup_int(value, big=big)
    if out is None:
        raise _invalid(f"{name} must be an integer or None, got {value!r:.60}")
    return out


def _check_reserve_args(quotas: Any, deltas: Any
                        ) -> tuple[dict[str, int], dict[str, int | None]]:
    """(deltas, limits) converted; QuotaResourceUnknown as §4.3's validation says."""
    if not isinstance(deltas, dict) or not all(isinstance(k, str) for k in deltas):
        raise _invalid("deltas must be a dict of resource name -> integer")
    unknown = sorted(k for k in deltas if k not in SYNC)
    if unknown:
        raise exceptions.QuotaResourceUnknown(unknown=unknown)
    if not isinstance(quotas, dict):
        raise _invalid("quotas must be a dict of resource name -> limit")
    missing = sorted(k for k in deltas if k not in quotas)
    if missing:
        raise exceptions.QuotaResourceUnknown(unknown=missing)
    checked: dict[str, int] = {}
    for name, delta in deltas.items():
        if delta is None:
            raise _invalid(f"the delta of {name} is None")
        checked[name] = convert(reservations, reservations.c.delta, delta)
    limits = {name: convert(Quota.__table__, Quota.__table__.c.hard_limit, quotas[name])
              for name in deltas}
    return checked, limits


# --- shared by reserve, commit and rollback ---------------------------------------------

async def lock_usages(session: Session, project_id: Any) -> dict[str, Row]:
    """The project's live usage rows, locked, by resource (a duplicate's highest id wins,
    as Nova's dict building does)."""
    rows = await session.rows(
        select(usages).where(not_deleted(usages),
                             equals(usages.c.project_id, project_id))
        .order_by(usages.c.id).with_for_update())
    return {row["resource"]: row for row in rows}


def _age(row: Row, now: dt.datetime) -> float | None:
    since = row["updated_at"] or row["created_at"]
    return None if since is None else (now - since).total_seconds()


class _Usages:
    """The usage rows one call loads or creates, and the values it will save."""

    def __init__(self, session: Session, project_id: Any, rows: dict[str, Row],
                 until_refresh: int | None) -> None:
        self.session = session
        self.project_id = project_id
        self.rows = rows
        self.values = {res: {k: row[k] for k in ("in_use", "reserved", "until_refresh")}
                       for res, row in rows.items()}
        self.reset_to = until_refresh or None

    async def create(self, resource: str) -> None:
        row = await self.session.insert(QuotaUsage, {
            "project_id": self.project_id, "resource": resource, "in_use": 0,
            "reserved": 0, "until_refresh": self.reset_to}, checked=True)
        self.rows[resource] = row
        self.values[resource] = {"in_use": 0, "reserved": 0, "until_refresh": self.reset_to}

    async def refresh(self, resource: str) -> tuple[str, ...]:
        members, sync = SYNC[resource]
        counts = await sync(self.session, self.project_id)
        for member in members:
            if member not in self.rows:
                await self.create(member)
            self.values[member]["in_use"] = counts[member]
            self.values[member]["until_refresh"] = self.reset_to
        return members

    async def save(self) -> None:
        # Object-style save: only rows whose values changed are written (updated_at moves).
        for resource, row in self.rows.items():
            # Unchecked on purpose: a count pushed past the 32-bit column is InvalidInput.
            await self.session.update(QuotaUsage, row, self.values[resource])

    def report(self) -> dict[str, dict[str, Any]]:
        return {res: {"in_use": v["in_use"], "reserved": v["reserved"]}
                for res, v in self.values.items()}


async def _decide_refreshes(work: _Usages, deltas: dict[str, int], max_age: int | None,
                            now: dt.datetime) -> None:
    done: set[str] = set()
    for resource in deltas:
        if resource in done:
            continue
        refresh = False
        if resource not in work.rows:
            await work.create(resource)
            refresh = True
        else:
            values = work.values[resource]
            if values["in_use"] is None or values["in_use"] < 0:
                # A desynchronised count heals itself (NULL compared below 0 in Nova).
                refresh = True
            elif values["until_refresh"] is not None:
                values["until_refresh"] -= 1
                refresh = values["until_refresh"] <= 0
            elif max_age:
                # DEFECT 5: the true age, now - updated_at (created_at if never updated).
                age = _age(work.rows[resource], now)
                refresh = age is None or age >= max_age
        if refresh:
            done.update(await work.refresh(resource))


def _over(limit: int | None, delta: int, values: dict[str, Any]) -> bool:
    # Only growth is checked: a project above its quota may always shrink (§4.3 step 5).
    if limit is None or limit < 0 or delta < 0:
        return False
    return limit < delta + values["in_use"] + (values["reserved"] or 0)




# --- quota_reserve, commit, rollback, expire --------------------------------------------

@api
async def quota_reserve(session: Session, context: RequestContext, resources: Any,
                        quotas: Any, deltas: Any, expire: Any, until_refresh: Any,
                        max_age: Any) -> list[str]:
    # ``resources`` carries Nova's sync callables in-process; over RPC only the names in
    # ``deltas`` matter and the §4.2 table supplies the sync groups, so it is not read.
    checked, limits = _check_reserve_args(quotas, deltas)
    countdown = _optional_int("until_refresh", until_refresh)
    age_limit = _optional_int("max_age", max_age, big=True)
    if not checked:
        return []
    expire_at = convert(reservations, reservations.c.expire, expire)
    project_id = context.project_id
    await session.lock("quota_usages", project_id)

    work = _Usages(session, project_id, await lock_usages(session, project_id), countdown)
    await _decide_refreshes(work, checked, age_limit, utcnow())

    unders = [r for r, d in checked.items() if d < 0 and d + work.values[r]["in_use"] < 0]
    if unders:
        log.warning("quota_reserve: change makes usage less than 0 for %s (project %s)",
                    sorted(unders), project_id)
    overs = sorted(r for r, d in checked.items() if _over(limits[r], d, work.values[r]))
    if overs:
        # §4.3 step 7: the refreshes are kept although the call answers OverQuota.
        await work.save()
        session.fail_after_commit(exceptions.OverQuota(overs=overs, quotas=quotas,
                                                       usages=work.report()))
        return []

    made = [{"uuid": str(uuid_module.uuid4()), "usage_id": work.rows[r]["id"],
             "project_id": project_id, "resource": r, "delta": d, "expire": expire_at}
            for r, d in checked.items()]
    await session.execute(insert(reservations), made)
    for resource, delta in checked.items():
        if delta > 0:
            values = work.values[resource]
            values["reserved"] = (values["reserved"] or 0) + delta
    await work.save()
    return [r["uuid"] for r in made]


def _uuid_list(reservations_arg: Any) -> list[Any]:
    if not isinstance(reservations_arg, (list, tuple, set, frozenset)):
        raise exceptions.InvalidInput(reason="reservations must be a list of uuid strings")
    return list(reservations_arg)


async def _finish(session: Session, context: RequestContext, reservations_arg: Any,
                  commit: bool) -> None:
    wanted = _uuid_list(reservations_arg)
    project_id = context.project_id
    rows = await lock_usages(session, project_id)
    found = await session.rows(
        select(reservations).where(not_deleted(reservations),
                                   one_of(reservations.c.uuid, wanted))
        .order_by(reservations.c.id).with_for_update()) if wanted else []
    if any(r["resource"] not in rows for r in found):
        # Nova dies on a KeyError here, before anything is written (DEFECT 12).
        raise exceptions.QuotaUsageNotFound(project_id=project_id)
    values = {res: {"in_use": row["in_use"], "reserved": row["reserved"]}
              for res, row in rows.items()}
    for reservation in found:
        usage, delta = values[reservation["resource"]], reservation["delta"] or 0
        if delta >= 0:
            usage["reserved"] = (usage["reserved"] or 0) - delta
        if commit:
            usage["in_use"] = (usage["in_use"] or 0) + delta
    if found:
        await session.soft_delete_where(Reservation,
                                        reservations.c.id.in_([r["id"] for r in found]),
                                        touch=True)
    for resource, row in rows.items():
        await session.update(QuotaUsage, row, values[resource])


@api
async def reservation_commit(session: Session, context: RequestContext,
                             reservations: Any) -> None:
    await _finish(session, context, reservations, commit=True)


@api
async def reservation_rollback(session: Session, context: RequestContext,
                               reservations: Any) -> None:
    await _finish(session, context, reservations, commit=False)


@api
async def reservation_expire(session: Session, context: RequestContext) -> None:
    now = utcnow()
    expired = select(reservations).where(not_deleted(reservations),
                                         reservations.c.expire < now)
    candidates = await session.rows(expired.order_by(reservations.c.id))
    if not candidates:
        return
    # Nova takes no locks here; locking the usages first (then the reservations, re-read
    # under the lock) keeps a concurrent commit of the same reservation from counting twice.
    usage_ids = sorted({r["usage_id"] for r in candidates})
    live = await session.rows(
        select(usages).where(usages.c.id.in_(usage_ids), not_deleted(usages))
        .order_by(usages.c.id).with_for_update())
    # Only the candidates: one that expired since is swept by the next call.
    found = await session.rows(
        expired.where(reservations.c.id.in_([r["id"] for r in candidates]))
        .order_by(reservations.c.id).with_for_update())
    by_id = {row["id"]: row for row in live}
    reserved = {row["id"]: row["reserved"] for row in live}
    for reservation in found:
        delta = reservation["delta"] or 0
        # The usage relationship only sees a live usage row (models.md); a reservation
        # whose usage was destroyed is simply dropped.
        if delta >= 0 and reservation["usage_id"] in reserved:
            key = reservation["usage_id"]
            reserved[key] = (reserved[key] or 0) - delta
    if found:
        await session.soft_delete_where(Reservation,
                                        reservations.c.id.in_([r["id"] for r in found]),
                                        touch=True)
    for key, row in by_id.items():
        await session.update(QuotaUsage, row, {"reserved": reserved[key]})


# --- plain accessors ---------------------------------------------------------------------

async def _reservation(session: Session, context: RequestContext, uuid: Any) -> Row:
    return await session.get(context, Reservation, "uuid", uuid,
                             lambda: exceptions.ReservationNotFound(uuid=uuid),
                             read_deleted="no")


@api
async def reservation_create(session: Session, context: RequestContext, uuid: Any,
                             usage: Any, project_id: Any, resource: Any, delta: Any,
                             expire: Any) -> Row:
    if not isinstance(usage, dict) or "id" not in usage:
        raise exceptions.InvalidInput(reason="usage must be a usage dict with an 'id'")
    return await session.insert(Reservation, {
        "uuid": uuid, "usage_id": usage["id"], "project_id": project_id,
        "resource": resource, "delta": delta, "expire": expire})


@api
async def reservation_get(session: Session, context: RequestContext, uuid: Any) -> Row:
    return await _reservation(session, context, uuid)


@api
async def reservation_get_all_by_project(session: Session, context: RequestContext,
                                         project_id: Any) -> dict[str, Any]:
    authorize_project(context, project_id)
    rows = await session.rows(project_rows(session, context, Reservation, project_id))
    result: dict[str, Any] = {"project_id": project_id}
    for row in rows:
        result.setdefault(row["resource"], {})[row["uuid"]] = row["delta"]
    return result


@api
async def reservation_destroy(session: Session, context: RequestContext, uuid: Any) -> None:
    row = await _reservation(session, context, uuid)
    await session.soft_delete(Reservation, row)
