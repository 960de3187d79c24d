"""Volume types and their extra specs (api-network-quota-storage.md §5.3)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select

from conductor.db.keyvalue import (
    TypeSpecs,
    items_dict,
    with_specs_dict,
)
from conductor.db.models import VolumeTypeExtraSpecs, VolumeTypes
from conductor.db.query import equals, not_deleted
from conductor.db.session import Row, Session
from conductor.handlers import api, plain
from schemas import exceptions
from schemas.context import RequestContext

types = VolumeTypes.__table__
specs = VolumeTypeExtraSpecs.__table__
TYPES = TypeSpecs(VolumeTypes, VolumeTypeExtraSpecs, "volume_type_id")
volume_type_get, volume_type_get_by_name, volume_type_destroy = plain.type_lookups(
    TYPES, "volume_type", exceptions.VolumeTypeNotFound, exceptions.VolumeTypeNotFoundByName)


def _live_specs(session: Session, context: RequestContext, volume_type_id: Any) -> Select[Any]:
    return (session.query(context, VolumeTypeExtraSpecs, read_deleted="no")
            .where(equals(specs.c.volume_type_id, volume_type_id)))


@api
async def volume_type_create(session: Session, context: RequestContext, values: Any) -> Row:
    if not isinstance(values, dict):
        raise exceptions.InvalidInput(reason="volume_type_create: values must be a dict")
    if "name" not in values:
        raise exceptions.InvalidInput(reason="volume_type_create: values must contain "
                                      "'name'")
    name = values["name"]
    # Closes the check-then-insert race between two creates of the same name.
    await session.lock("volume_type_create")
    visible = session.query(context, VolumeTypes).where(equals(types.c.name, name)).limit(1)
    if await session.row(visible) is not None:
        raise exceptions.VolumeTypeExists(name=name)
    return await TYPES.insert(session, values)


@api
async def volume_type_get_all(session: Session, context: RequestContext,
                              inactive: Any = False) -> dict[Any, Row]:
    rows = await session.rows(
        session.query(context, VolumeTypes, read_deleted="yes" if inactive else "no")
        .order_by(types.c.name, types.c.id), ("extra_specs",))
    # name order: with duplicate names the last row read wins
    return {row["name"]: with_specs_dict(row) for row in rows}


@api
async def volume_type_extra_specs_get(session: Session, context: RequestContext,
                                      volume_type_id: Any) -> dict[Any, Any]:
    return await items_dict(session, context, VolumeTypeExtraSpecs,
                            equals(specs.c.volume_type_id, volume_type_id), read_deleted="no")


@api
async def volume_type_extra_specs_delete(session: Session, context: RequestContext,
                                         volume_type_id: Any, key: Any) -> None:
    await session.soft_delete_where(VolumeTypeExtraSpecs, not_deleted(specs),
                                    equals(specs.c.volume_type_id, volume_type_id),
                                    equals(specs.c.key, key))


@api
async def volume_type_extra_specs_update_or_create(session: Session,
                                                   context: RequestContext,
                                                   volume_type_id: Any,
                                                   extra_specs: Any) -> None:
    if not isinstance(extra_specs, dict):
        raise exceptions.InvalidInput(reason="volume_type_extra_specs_update_or_create: "
                                      "extra_specs must be a dict of key -> value")
    # Convert every value first, so a value the column refuses writes nothing.
    wanted = [session.check(VolumeTypeExtraSpecs,
                            {"key": k, "value": v, "volume_type_id": volume_type_id,
                             "deleted": False})
              for k, v in extra_specs.items()]
    for cols in wanted:
        existing = await session.rows(_live_specs(session, context, cols["volume_type_id"])
                                      .where(equals(specs.c.key, cols["key"]))
                                      .order_by(specs.c.id))
        if not existing:
            await session.insert(VolumeTypeExtraSpecs, cols, checked=True)
        # every live row of the key, so that a duplicate cannot shadow the new value
        for row in existing:
            await session.update(VolumeTypeExtraSpecs, row, cols, checked=True)
