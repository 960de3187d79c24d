"""Block device mappings (api-network-quota-storage.md §5.5).

Rows are columns only, and no function checks that the instance exists.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import ColumnElement, update

from conductor.db.base import utcnow
from conductor.db.models import BlockDeviceMapping
from conductor.db.query import deleted_filter, equals
from conductor.db.session import Row, Session
from conductor.db.values import lookup_int
from conductor.handlers import api
from schemas import exceptions
from schemas.context import RequestContext

bdms = BlockDeviceMapping.__table__

# nova.block_device: one swap device and one device per ephemeral index per instance
_EPHEMERAL = re.compile(r"ephemeral(?:[0-9]|[1-9][0-9]+)")


def _is_swap_or_ephemeral(name: Any) -> bool:
    return isinstance(name, str) and (name == "swap" or _EPHEMERAL.fullmatch(name) is not None)


def _visible(session: Session, context: RequestContext) -> list[ColumnElement[bool]]:
    """The context's read_deleted and isolation as WHERE conditions for a bulk
    statement (another project's mappings are left alone, as if missing)."""
    cond = deleted_filter(bdms, context.read_deleted)
    return [*([] if cond is None else [cond]), *session.visible(context, BlockDeviceMapping)]


def _require_keys(function: str, values: Any, *keys: str) -> None:
    if not isinstance(values, dict):
        raise exceptions.InvalidInput(reason=f"{function}: values must be a dict")
    for key in keys:
        if key not in values:
            raise exceptions.InvalidInput(reason=f"{function}: values must contain {key!r}")


@api
async def block_device_mapping_create(session: Session, context: RequestContext,
                                      values: Any) -> None:
    await session.insert(BlockDeviceMapping, values, creator=context, refused=lambda:
                         exceptions.InstanceNotFound(instance_id=values.get("instance_uuid")))


@api
async def block_device_mapping_update(session: Session, context: RequestContext,
                                      bdm_id: Any, values: Any) -> None:
    _require_keys("block_device_mapping_update", values)
    unknown = sorted(repr(k) for k in values if not isinstance(k, str) or k not in bdms.c)
    if unknown:
        # A bulk UPDATE cannot ignore a key the way an object save does (§1.7).
        raise exceptions.InvalidInput(reason=f"block_device_mapping has no column "
                                      f"{', '.join(unknown)}")
    cols = session.check(BlockDeviceMapping, values)
    key = lookup_int(bdm_id)
    if key is None:
        return
    # explicit, so that ``values == {}`` is still an UPDATE that moves updated_at
    cols.setdefault("updated_at", utcnow())
    await session.execute(update(bdms).where(bdms.c.id == key, *_visible(session, context))
                          .values(cols))


@api
async def block_device_mapping_update_or_create(session: Session, context: RequestContext,
                                                values: Any) -> None:
    _require_keys("block_device_mapping_update_or_create", values, "instance_uuid",
                  "device_name")
    cols = session.check(BlockDeviceMapping, values)
    instance_uuid, device_name = cols["instance_uuid"], cols["device_name"]
    found = await session.first(context, BlockDeviceMapping,
                                equals(bdms.c.instance_uuid, instance_uuid),
                                equals(bdms.c.device_name, device_name))
    if found is None:
        await session.insert(BlockDeviceMapping, cols, checked=True, creator=context,
                             refused=lambda: exceptions.InstanceNotFound(
                                 instance_id=instance_uuid))
    else:
        await session.update(BlockDeviceMapping, found, cols, checked=True)
    # A missing virtual_name counts as None (the contract's fix of Nova's KeyError).
    virtual_name = cols.get("virtual_name")
    if _is_swap_or_ephemeral(virtual_name):
        # deleted rows included: Nova's query here has no read_deleted filter
        await session.soft_delete_where(
            BlockDeviceMapping, equals(bdms.c.instance_uuid, instance_uuid),
            bdms.c.virtual_name == virtual_name,
            bdms.c.device_name != device_name, *session.visible(context, BlockDeviceMapping))


@api
async def block_device_mapping_get_all_by_instance(session: Session, context: RequestContext,
                                                   instance_uuid: Any) -> list[Row]:
    return await session.all(context, BlockDeviceMapping,
                             equals(bdms.c.instance_uuid, instance_uuid))


@api
async def block_device_mapping_destroy(session: Session, context: RequestContext,
                                       bdm_id: Any) -> None:
    key = lookup_int(bdm_id)
    if key is not None:
        # whatever its deleted state: Nova's query has no read_deleted filter
        await session.soft_delete_where(BlockDeviceMapping, bdms.c.id == key,
                                        *session.visible(context, BlockDeviceMapping))


async def _destroy_visible(session: Session, context: RequestContext, *where: Any) -> None:
    await session.soft_delete_where(BlockDeviceMapping, *where, *_visible(session, context))


@api
async def block_device_mapping_destroy_by_instance_and_device(
        session: Session, context: RequestContext, instance_uuid: Any,
        device_name: Any) -> None:
    await _destroy_visible(session, context, equals(bdms.c.instance_uuid, instance_uuid),
                           equals(bdms.c.device_name, device_name))


@api
async def block_device_mapping_destroy_by_instance_and_volume(
        session: Session, context: RequestContext, instance_uuid: Any,
        volume_id: Any) -> None:
    await _destroy_visible(session, context, equals(bdms.c.instance_uuid, instance_uuid),
                           equals(bdms.c.volume_id, volume_id))
