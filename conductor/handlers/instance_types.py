"""Flavors, their access list and extra specs (api-compute.md §3.8)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, exists, false, or_, select

from conductor.db.keyvalue import (
    TypeSpecs,
    items_dict,
    with_specs_dict,
)
from conductor.db.models import InstanceTypeExtraSpecs, InstanceTypeProjects, InstanceTypes
from conductor.db.query import equals, not_deleted
from conductor.db.session import Row, Session
from conductor.db.values import check_value
from conductor.handlers import api, plain
from schemas import exceptions
from schemas.context import RequestContext

flavors = InstanceTypes.__table__
specs = InstanceTypeExtraSpecs.__table__
access = InstanceTypeProjects.__table__
FLAVORS = TypeSpecs(InstanceTypes, InstanceTypeExtraSpecs, "instance_type_id")
instance_type_get, instance_type_get_by_name, instance_type_destroy = plain.type_lookups(
    FLAVORS, "instance_type", exceptions.InstanceTypeNotFound,
    exceptions.InstanceTypeNotFoundByName)


@api
async def instance_type_get_by_flavor_id(session: Session, context: RequestContext, id: Any,
                                         *, specs_too: bool = True) -> Row:
    # ``id`` is the public flavorid, not the internal key (Nova's parameter name).
    def missing() -> Exception:
        return exceptions.FlavorNotFound(flavor_id=id)
    if specs_too:
        return with_specs_dict(await session.get(context, InstanceTypes, "flavorid", id,
                                                 missing, ("extra_specs",)))
    return await session.get(context, InstanceTypes, "flavorid", id, missing)


async def _lock(session: Session, flavor: Row) -> None:
    """Serialise access-list writers of one flavor on its row, so that two concurrent
    adds cannot both insert (a no-op on SQLite, where the dispatcher runs one writer at a
    time).  Duplicate spec rows would be invisible to callers, so specs go unlocked."""
    await session.execute(select(flavors.c.id).where(flavors.c.id == flavor["id"])
                          .with_for_update())


def _live_flavor_ids(flavor_id: Any) -> Select[Any]:
    return select(flavors.c.id).where(not_deleted(flavors),
                                      equals(flavors.c.flavorid, flavor_id))


def _live_specs(session: Session, context: RequestContext, flavor_id: Any) -> Select[Any]:
    return (session.query(context, InstanceTypeExtraSpecs, read_deleted="no")
            .where(specs.c.instance_type_id.in_(_live_flavor_ids(flavor_id))))


@api
async def instance_type_create(session: Session, context: RequestContext, values: Any) -> Row:
    if not isinstance(values, dict):
        raise exceptions.InvalidInput(reason="instance_type_create: values must be a dict")
    for key in ("name", "flavorid"):
        if key not in values:
            raise exceptions.InvalidInput(reason=f"instance_type_create: values must "
                                          f"contain {key!r}")
    name = values["name"]
    # Closes the check-then-insert race between two creates of the same flavor.
    await session.lock("instance_type_create")
    visible = session.query(context, InstanceTypes).limit(1)
    for column, value in ((flavors.c.name, name), (flavors.c.flavorid, values["flavorid"])):
        if await session.row(visible.where(equals(column, value))) is not None:
            raise exceptions.InstanceTypeExists(name=name)  # keyed by name either way
    return await FLAVORS.insert(session, values)


def _at_least(column: str, value: Any) -> ColumnElement[bool]:
    bound = check_value(flavors, column, value)
    # ``>= NULL`` holds for no row (SQLAlchemy refuses to write it)
    return false() if bound is None else flavors.c[column] >= bound


@api
async def instance_type_get_all(session: Session, context: RequestContext,
                                inactive: Any = False, filters: Any = None) -> list[Row]:
    filters = filters or {}
    if not isinstance(filters, dict):
        raise exceptions.InvalidInput(reason="instance_type_get_all: filters must be a dict")
    stmt = session.query(context, InstanceTypes, read_deleted="yes" if inactive else "no")
    for key, column in (("min_memory_mb", "memory_mb"), ("min_root_gb", "root_gb")):
        if key in filters:
            stmt = stmt.where(_at_least(column, filters[key]))
    if "disabled" in filters:
        stmt = stmt.where(flavors.c.disabled == check_value(flavors, "disabled",
                                                            filters["disabled"]))
    is_public = check_value(flavors, "is_public", filters.get("is_public"))
    if is_public is not None:
        cond: ColumnElement[bool] = flavors.c.is_public == is_public
        if is_public and context.project_id is not None:
            cond = or_(cond, exists().where(access.c.instance_type_id == flavors.c.id,
                                            access.c.project_id == context.project_id,
                                            not_deleted(access)))
        stmt = stmt.where(cond)
    rows = await session.rows(stmt.order_by(flavors.c.name, flavors.c.id), ("extra_specs",))
    return [with_specs_dict(r) for r in rows]


@api
async def instance_type_access_get_by_flavor_id(session: Session, context: RequestContext,
                                                flavor_id: Any) -> list[Row]:
    # Nova crashes for an unknown flavor; the spec recommends the getter's not-found error.
    row = await session.first(context, InstanceTypes, equals(flavors.c.flavorid, flavor_id),
                              joins=("projects",),
                              missing=lambda: exceptions.FlavorNotFound(flavor_id=flavor_id))
    projects: list[Row] = row["projects"]
    return projects


def _access_conditions(flavor: Row, project_id: Any) -> tuple[ColumnElement[bool], ...]:
    return (access.c.instance_type_id == flavor["id"],
            equals(access.c.project_id, project_id))


@api
async def instance_type_access_add(session: Session, context: RequestContext,
                                   flavor_id: Any, project_id: Any) -> Row:
    flavor = await instance_type_get_by_flavor_id(session, context, flavor_id, specs_too=False)
    await _lock(session, flavor)
    found = await session.first(context, InstanceTypeProjects,
                                *_access_conditions(flavor, project_id), read_deleted="yes")
    if found is None:
        return await session.insert(InstanceTypeProjects,
                                    {"instance_type_id": flavor["id"],
                                     "project_id": project_id},
                                    echo={"project_id": project_id})
    if found["deleted"]:
        return await session.update(InstanceTypeProjects, found,
                                    {"deleted": False, "deleted_at": None}, checked=True)
    raise exceptions.FlavorAccessExists(flavor_id=flavor_id, project_id=project_id)


@api
async def instance_type_access_remove(session: Session, context: RequestContext,
                                      flavor_id: Any, project_id: Any) -> None:
    flavor = await instance_type_get_by_flavor_id(session, context, flavor_id, specs_too=False)
    # Deleted rows match too, so removing twice succeeds and restamps deleted_at (Quirk).
    removed = await session.soft_delete_where(InstanceTypeProjects,
                                              *_access_conditions(flavor, project_id))
    if not removed:
        raise exceptions.FlavorAccessNotFound(flavor_id=flavor_id, project_id=project_id)


@api
async def instance_type_extra_specs_get(session: Session, context: RequestContext,
                                        flavor_id: Any) -> dict[str, Any]:
    return await items_dict(session, context, InstanceTypeExtraSpecs,
                            specs.c.instance_type_id.in_(_live_flavor_ids(flavor_id)),
                            read_deleted="no")


@api
async def instance_type_extra_specs_delete(session: Session, context: RequestContext,
                                           flavor_id: Any, key: Any) -> None:
    await session.soft_delete_where(
        InstanceTypeExtraSpecs, not_deleted(specs),
        specs.c.instance_type_id.in_(_live_flavor_ids(flavor_id)),
        equals(specs.c.key, key), *session.visible(context, InstanceTypeExtraSpecs))


@api
async def instance_type_extra_specs_update_or_create(session: Session,
                                                     context: RequestContext,
                                                     flavor_id: Any,
                                                     extra_specs: Any) -> None:
    flavor = await instance_type_get_by_flavor_id(session, context, flavor_id, specs_too=False)
    if not isinstance(extra_specs, dict):
        raise exceptions.InvalidInput(reason="instance_type_extra_specs_update_or_create: "
                                      "extra_specs must be a dict of key -> value")
    for key, value in extra_specs.items():
        cols = session.check(InstanceTypeExtraSpecs,
                             {"key": key, "value": value, "instance_type_id": flavor["id"],
                              "deleted": False})
        existing = await session.row(_live_specs(session, context, flavor_id)
                                     .where(equals(specs.c.key, key))
                                     .order_by(specs.c.id).limit(1))
        if existing is None:
            await session.insert(InstanceTypeExtraSpecs, cols, checked=True)
        else:
            await session.update(InstanceTypeExtraSpecs, existing, cols, checked=True)
