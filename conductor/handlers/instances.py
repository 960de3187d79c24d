"""Instances (api-compute.md §3.6); the filtered search is in ``instance_filters``.

``instance_id`` names the integer id in ``instance_get`` and
``instance_get_floating_address`` only; everywhere else an instance is named by its uuid.
"""

from __future__ import annotations

import copy
import datetime as dt
import math
import uuid as uuid_module
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, not_, or_, select

from conductor.contract import INSTANCE_EVENT_KEYS
from conductor.db import events
from conductor.db.base import utcnow
from conductor.db.loading import relation
from conductor.db.models import (
    FixedIp,
    FloatingIp,
    Instance,
    InstanceInfoCache,
    InstanceMetadata,
    InstanceSystemMetadata,
    SecurityGroup,
    SecurityGroupInstanceAssociation,
)
from conductor.db.query import equals, key_equals, not_deleted, one_of, require_uuid
from conductor.db.session import Row, Session, rows_as_dict
from conductor.db.values import datetime_arg, lookup_int
from conductor.handlers import api
from conductor.handlers.ec2 import create_instance_mapping
from conductor.handlers.instance_metadata import delete_info_cache, replace_metadata
from conductor.handlers.security_groups import ensure_default_group
from schemas import exceptions
from schemas.conditions import Constraint, EqualityCondition
from schemas.context import RequestContext

instances = Instance.__table__
groups = SecurityGroup.__table__
links = SecurityGroupInstanceAssociation.__table__

# What each family of functions returns nested (api-compute.md §1.6); every instance
# result also carries system_metadata (declared with the table).
FULL = ("security_groups", "security_groups.rules", "info_cache", "metadata",
        "instance_type")
LISTED = ("info_cache", "security_groups", "metadata", "instance_type")
CREATED = ("security_groups", "info_cache", "metadata", "system_metadata", "instance_type")

# Relationship keys that instance_create handles itself (api-compute.md §1.5).
_CREATE_KEYS = ("metadata", "system_metadata", "info_cache", "security_groups")
_UPDATE_KEYS = ("metadata", "system_metadata", "expected_task_state")

def _values(values: Any) -> dict[Any, Any]:
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise exceptions.InvalidInput(reason=f"values must be a dict, got "
                                      f"{type(values).__name__}")
    return dict(values)


def _metadata(values: dict[Any, Any], key: str) -> dict[Any, Any]:
    found = values.get(key)
    if found is None:
        return {}
    if not isinstance(found, dict):
        raise exceptions.InvalidInput(reason=f"instances.{key} must be a dict of "
                                      f"key -> value, got {type(found).__name__}")
    return found


async def load_by_uuid(session: Session, context: RequestContext, instance_uuid: Any,
                       joins: tuple[str, ...] = FULL, *, lock: bool = False,
                       bare: bool = False) -> Row:
    """The instance as ``instance_get_by_uuid`` sees it (project scoped, deleted rows per
    context), or ``InstanceNotFound``; ``lock`` takes the row lock (``FOR UPDATE``)."""
    return await session.get(context, Instance, "uuid", instance_uuid,
                             lambda: exceptions.InstanceNotFound(instance_id=instance_uuid),
                             joins, project_only=True, lock=lock, bare=bare)


async def _by_id(session: Session, context: RequestContext, instance_id: Any,
                 joins: tuple[str, ...], *, bare: bool = False) -> Row:
    return await session.get(context, Instance, "id", instance_id,
                             lambda: exceptions.InstanceNotFound(instance_id=instance_id),
                             joins, project_only=True, bare=bare)


async def _emit(session: Session, context: RequestContext, event: str, row: Row,
                stored: Row, **extra: Any) -> None:
    """Record ``instance.<event>`` in the outbox of the call's transaction (published
    after it commits; nothing if it rolls back).  ``stored``: the values the call wrote,
    as stored (``row`` echoes the caller's own)."""
    payload = {k: stored[k] if k in stored else row[k] for k in INSTANCE_EVENT_KEYS}
    await events.record(session, f"instance.{event}", "instance", row["uuid"],
                        dict(payload, **extra), context.request_id)


# --- create ---------------------------------------------------------------------------

async def _group_ids(session: Session, context: RequestContext, names: Any) -> list[int]:
    if names is None:
        names = []
    if not isinstance(names, (list, tuple, set, frozenset)) or \
            not all(isinstance(n, str) for n in names):
        raise exceptions.InvalidInput(reason="security_groups must be a list of group names")
    # The default group is made even when the list does not name it (a Nova quirk).
    _, default = await ensure_default_group(session, context)
    ids = [default["id"]] if "default" in names else []
    wanted = [n for n in names if n != "default"]
    if wanted:
        found = await session.rows(
            select(groups).where(not_deleted(groups),
                                 equals(groups.c.project_id, context.project_id),
                                 groups.c.name.in_(wanted))
            .order_by(groups.c.id), bare=True)
        have = {g["name"] for g in found}
        for name in wanted:
            if name not in have:
                raise exceptions.SecurityGroupNotFoundForProject(
                    project_id=context.project_id, security_group_id=name)
        ids += [g["id"] for g in found]
    return ids


@api
async def instance_create(session: Session, context: RequestContext, values: Any) -> Row:
    values = _values(values)
    if not values.get("uuid"):
        values["uuid"] = str(uuid_module.uuid4())
    cols = session.check(Instance, values, allowed_extra=_CREATE_KEYS)
    uuid = cols["uuid"]
    # Every value is converted before anything is written.
    meta = [(session.check(InstanceMetadata, {"key": k, "value": v, "instance_uuid": uuid}),
             {"key": k, "value": v}) for k, v in _metadata(values, "metadata").items()]
    system = [(session.check(InstanceSystemMetadata,
                             {"key": k, "value": v, "instance_uuid": uuid}),
               {"key": k, "value": v})
              for k, v in _metadata(values, "system_metadata").items()]
    given_cache = values.get("info_cache")
    given_cache = dict(given_cache) if isinstance(given_cache, dict) else {}
    given_cache.pop("instance_uuid", None)  # the relationship sets it, as in Nova
    cache = session.check(InstanceInfoCache, dict(given_cache, instance_uuid=uuid))
    group_ids = await _group_ids(session, context, values.get("security_groups"))

    row = await session.insert(Instance, cols, checked=True, echo=values, creator=context)
    row["metadata"] = [await session.insert(InstanceMetadata, checked_row, checked=True,
                                            echo=echo) for checked_row, echo in meta]
    row["system_metadata"] = [
        await session.insert(InstanceSystemMetadata, checked_row, checked=True, echo=echo)
        for checked_row, echo in system]
    row["info_cache"] = await session.insert(InstanceInfoCache, cache, checked=True,
                                             echo=given_cache)
    for group_id in group_ids:
        await session.insert(SecurityGroupInstanceAssociation,
                             {"security_group_id": group_id, "instance_uuid": uuid},
                             checked=True)
    await session.load(Instance, [row], ("security_groups", "instance_type"))
    await create_instance_mapping(session, uuid)
    await _emit(session, context, "created", row, cols)
    return row


# --- reads ----------------------------------------------------------------------------

@api
async def instance_get_by_uuid(session: Session, context: RequestContext, uuid: Any) -> Row:
    return await load_by_uuid(session, context, uuid)


@api
async def instance_get(session: Session, context: RequestContext, instance_id: Any) -> Row:
    return await _by_id(session, context, instance_id, FULL)


def _joins(columns_to_join: Any) -> tuple[str, ...]:
    if columns_to_join is None:
        return LISTED
    if not isinstance(columns_to_join, (list, tuple)) or \
            not all(isinstance(c, str) for c in columns_to_join):
        raise exceptions.InvalidInput(reason="columns_to_join must be a list of names")
    for path in columns_to_join:
        table = instances
        for part in path.split("."):
            try:
                table = relation(table, part).target
            except KeyError:
                raise exceptions.InvalidInput(
                    reason=f"instances have no relationship {path!r}") from None
    return tuple(columns_to_join)


@api
async def instance_get_all(session: Session, context: RequestContext,
                           columns_to_join: Any = None) -> list[Row]:
    joins = _joins(columns_to_join)
    return await session.all(context, Instance, joins=joins)


def _active_by_window(session: Session, context: RequestContext, begin: Any, end: Any,
                      project_id: Any, host: Any) -> Select[Any]:
    start = datetime_arg("begin", instances.c.terminated_at, begin)
    stop = datetime_arg("end", instances.c.launched_at, end)
    # Deleted rows always count: read_deleted is ignored (api-compute.md §3.6).
    stmt = session.query(context, Instance, read_deleted="yes")
    terminated = instances.c.terminated_at
    stmt = stmt.where(terminated.is_(None) if start is None
                      else or_(terminated.is_(None), terminated > start))
    if stop is not None:
        stmt = stmt.where(instances.c.launched_at < stop)
    if project_id:
        session.own_project(context, project_id)
        stmt = stmt.where(equals(instances.c.project_id, project_id))
    if host:
        stmt = stmt.where(equals(instances.c.host, host))
    return stmt.order_by(instances.c.id)


@api
async def instance_get_active_by_window(session: Session, context: RequestContext,
                                        begin: Any, end: Any = None, project_id: Any = None,
                                        host: Any = None) -> list[Row]:
    return await session.rows(_active_by_window(session, context, begin, end, project_id, host))


@api
async def instance_get_active_by_window_joined(session: Session, context: RequestContext,
                                               begin: Any, end: Any = None,
                                               project_id: Any = None,
                                               host: Any = None) -> list[Row]:
    return await session.rows(_active_by_window(session, context, begin, end, project_id, host),
                              LISTED)


async def _listed(session: Session, context: RequestContext,
                  *where: ColumnElement[bool]) -> list[Row]:
    return await session.all(context, Instance, *where, joins=LISTED)


@api
async def instance_get_all_by_project(session: Session, context: RequestContext,
                                      project_id: Any) -> list[Row]:
    # Admin only in effect: the catalog's check runs first (api-compute.md §3.6).
    return await _listed(session, context, equals(instances.c.project_id, project_id))


@api
async def instance_get_all_by_host(session: Session, context: RequestContext,
                                   host: Any) -> list[Row]:
    return await _listed(session, context, equals(instances.c.host, host))


@api
async def instance_get_all_by_host_and_not_type(session: Session, context: RequestContext,
                                                host: Any, type_id: Any = None) -> list[Row]:
    # SQL ``!=``: NULL never differs, so the default None means "has a flavor", and a
    # value no integer column can hold differs from every flavor id.
    type_key = lookup_int(type_id) if type_id is not None else None
    differs = (instances.c.instance_type_id.is_not(None) if type_key is None
               else instances.c.instance_type_id != type_key)
    return await _listed(session, context, equals(instances.c.host, host), differs)


@api
async def instance_get_all_by_reservation(session: Session, context: RequestContext,
                                          reservation_id: Any) -> list[Row]:
    return await _listed(session, context,
                         equals(instances.c.reservation_id, reservation_id))


@api
async def instance_get_floating_address(session: Session, context: RequestContext,
                                        instance_id: Any) -> str | None:
    instance = await _by_id(session, context, instance_id, (), bare=True)
    fixed = await session.get(
        context, FixedIp, "instance_uuid", instance["uuid"],
        lambda: exceptions.FixedIpNotFoundForInstance(instance_uuid=instance["uuid"]),
        read_deleted="no")
    floating = await session.first(context, FloatingIp,
                                   FloatingIp.__table__.c.fixed_ip_id == fixed["id"], bare=True)
    return None if floating is None else floating["address"]


@api
async def instance_get_all_hung_in_rebooting(session: Session, context: RequestContext,
                                             reboot_window: Any) -> list[Row]:
    seconds = None
    if not isinstance(reboot_window, bool):
        try:
            seconds = float(reboot_window)
        except (TypeError, ValueError):
            pass
    if seconds is None or not math.isfinite(seconds):
        raise exceptions.InvalidInput(reason=f"reboot_window must be a number of seconds, "
                                      f"got {reboot_window!r:.60}")
    try:
        cutoff = utcnow() - dt.timedelta(seconds=seconds)
    except OverflowError:
        raise exceptions.InvalidInput(reason="reboot_window is out of range") from None
    return await session.all(context, Instance, instances.c.task_state == "rebooting",
                             instances.c.updated_at <= cutoff, read_deleted="yes")


async def project_totals(session: Session, project_id: Any) -> tuple[int, int, int]:
    """The project's live instances: count, vCPUs, memory (also the quota usages)."""
    result = await session.execute(
        select(func.count(instances.c.id), func.sum(instances.c.vcpus),
               func.sum(instances.c.memory_mb))
        .where(not_deleted(instances),
               equals(instances.c.project_id, project_id)))
    count, vcpus, memory = result.one()
    return (int(count or 0), int(vcpus or 0), int(memory or 0))


@api
async def instance_data_get_for_project(session: Session, context: RequestContext,
                                        project_id: Any) -> tuple[int, int, int]:
    return await project_totals(session, project_id)


# --- writes ---------------------------------------------------------------------------

def _constraint_conditions(constraint: Any) -> list[ColumnElement[bool]]:
    if constraint is None:
        return []
    if not isinstance(constraint, Constraint):
        raise exceptions.InvalidInput(reason="constraint must be made by constraint(...)")
    out = []
    for name, condition in constraint.conditions.items():
        column = instances.c.get(name) if isinstance(name, str) else None
        if column is None:
            raise exceptions.InvalidInput(reason=f"constraint names {name!r}, which is not "
                                          f"a column of instances")
        if isinstance(condition, EqualityCondition):
            # "Equals any" as documented (IN), not Nova's AND of equalities; None is
            # matched as filter_by matches it (IS NULL).
            out.append(one_of(column, condition.values))
        else:
            # A NULL column differs from nothing (SQL <>), so it never passes; a value
            # no row can hold is always different.
            out.append(and_(column.is_not(None),
                            not_(one_of(column, [v for v in condition.values
                                                 if v is not None]))))
    return out


@api
async def instance_destroy(session: Session, context: RequestContext, instance_uuid: Any,
                           constraint: Any = None) -> Row:
    require_uuid(instance_uuid)
    where = _constraint_conditions(constraint)
    row = await load_by_uuid(session, context, instance_uuid)
    if await session.soft_delete_where(Instance, instances.c.id == row["id"], *where) == 0:
        raise exceptions.ConstraintNotMet()
    await session.soft_delete_where(SecurityGroupInstanceAssociation,
                                    links.c.instance_uuid == row["uuid"])
    await delete_info_cache(session, context, row["uuid"], existing=row["info_cache"])
    # The bulk soft delete chose deleted_at; show it on the row returned.
    fresh = (await session.execute(select(instances.c.deleted, instances.c.deleted_at)
                                   .where(instances.c.id == row["id"]))).one()
    row["deleted"], row["deleted_at"] = fresh.deleted, fresh.deleted_at
    await _emit(session, context, "destroyed", row, {})
    return row


@api
async def instance_test_and_set(session: Session, context: RequestContext,
                                instance_uuid: Any, attr: Any, ok_states: Any,
                                new_state: Any) -> None:
    require_uuid(instance_uuid)
    if not isinstance(attr, str) or attr not in instances.c:
        raise exceptions.InvalidInput(reason=f"instances has no column {attr!r:.60}")
    if not isinstance(ok_states, (list, tuple, set, frozenset)):
        raise exceptions.InvalidInput(reason="ok_states must be a list of states")
    # Recommended: a missing instance is InstanceNotFound (Nova crashed).
    row = await load_by_uuid(session, context, instance_uuid, (), lock=True, bare=True)
    if row[attr] not in ok_states:
        raise exceptions.InstanceInvalidState(attr=attr, instance_uuid=instance_uuid,
                                              state=row[attr],
                                              method="instance_test_and_set")
    await session.update(Instance, row, {attr: new_state})


async def _update(session: Session, context: RequestContext, instance_uuid: Any,
                  values: Any, keep_original: bool) -> tuple[Row | None, Row]:
    require_uuid(instance_uuid)
    values = _values(values)
    expecting = "expected_task_state" in values
    # Recommended: lock when checking the task state, so check and write are atomic.
    row = await load_by_uuid(session, context, instance_uuid, lock=expecting)
    if expecting:
        expected = values.pop("expected_task_state")
        if not isinstance(expected, (list, tuple, set, frozenset)):
            expected = (expected,)
        if row["task_state"] not in expected:
            raise exceptions.UnexpectedTaskStateError(actual=row["task_state"],
                                                      expected=expected)
    original = copy.deepcopy(row) if keep_original else None
    metadata = values.pop("metadata", None)
    system_metadata = values.pop("system_metadata", None)
    cols = session.check(Instance, values, allowed_extra=_UPDATE_KEYS)
    # The stored values before, for the event: it names only what really changes.
    before = {k: row[k] for k in cols}
    before_meta = {k: rows_as_dict(row[k]) for k, given in
                   (("metadata", metadata), ("system_metadata", system_metadata))
                   if given is not None}
    if metadata is not None:
        await replace_metadata(session, context, InstanceMetadata.__table__, row["uuid"],
                               metadata, True)
    if system_metadata is not None:
        await replace_metadata(session, context, InstanceSystemMetadata.__table__,
                               row["uuid"], system_metadata, True, read_deleted=None)
    flavor = row["instance_type_id"]
    await session.update(Instance, row, cols, checked=True, echo=values)
    # Recommended: the result shows the new metadata and the new flavor; name is
    # recomputed in any case (a template may use the columns).
    reload = (("metadata",) if metadata is not None else ()) + \
        (("system_metadata",) if system_metadata is not None else ()) + \
        (("instance_type",) if row["instance_type_id"] != flavor else ())
    await session.load(Instance, [row], reload)
    changes = {k: v for k, v in cols.items() if before[k] != v}
    changes.update({k: now for k, old in before_meta.items()
                    if (now := rows_as_dict(row[k])) != old})
    if changes:  # a call that changes nothing announces nothing
        await _emit(session, context, "updated", row, cols, changes=changes)
    if metadata is not None:
        _echo_metadata(session, row["metadata"], metadata)
    return original, row


def _echo_metadata(session: Session, items: list[Row], given: dict[Any, Any]) -> None:
    # Values come back as the caller gave them (api-compute.md §1.5).
    by_key = {session.check(InstanceMetadata, {"key": k})["key"]: v
              for k, v in given.items()}
    for item in items:
        if item["key"] in by_key:
            item["value"] = by_key[item["key"]]


@api
async def instance_update(session: Session, context: RequestContext, instance_uuid: Any,
                          values: Any) -> Row:
    return (await _update(session, context, instance_uuid, values, False))[1]


@api
async def instance_update_and_get_original(session: Session, context: RequestContext,
                                           instance_uuid: Any,
                                           values: Any) -> tuple[Row, Row]:
    original, updated = await _update(session, context, instance_uuid, values, True)
    assert original is not None
    return (original, updated)


@api
async def instance_add_security_group(session: Session, context: RequestContext,
                                      instance_id: Any, security_group_id: Any) -> None:
    # instance_id is the uuid here (Nova's naming).
    instance = await load_by_uuid(session, context, instance_id, (), bare=True)
    group = await session.get(
        context, SecurityGroup, "id", security_group_id,
        lambda: exceptions.SecurityGroupNotFound(security_group_id=security_group_id),
        project_only=True, bare=True)
    # No check for an existing link: a second call adds a second row, as in Nova.
    await session.insert(SecurityGroupInstanceAssociation,
                         {"security_group_id": group["id"],
                          "instance_uuid": instance["uuid"]}, checked=True)


@api
async def instance_remove_security_group(session: Session, context: RequestContext,
                                         instance_id: Any, security_group_id: Any) -> None:
    instance = await load_by_uuid(session, context, instance_id, (), bare=True)
    await session.soft_delete_where(SecurityGroupInstanceAssociation,
                                    links.c.instance_uuid == instance["uuid"],
                                    key_equals(links.c.security_group_id, security_group_id))
