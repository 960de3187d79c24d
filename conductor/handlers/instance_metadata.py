"""Instance metadata, system metadata (api-compute.md §3.9) and info caches (§3.7).

None of these functions checks that the instance exists; they work on ``instance_uuid``
alone.  Under strict isolation another project's instance is treated as missing: its rows
are not read, and writes about it raise ``InstanceNotFound``.  :func:`replace_metadata`
and :func:`delete_info_cache` are shared with ``instance_update`` and ``instance_destroy``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table

from conductor.db import keyvalue
from conductor.db.base import utcnow
from conductor.db.models import (
    Instance,
    InstanceInfoCache,
    InstanceMetadata,
    InstanceSystemMetadata,
)
from conductor.db.query import deleted_filter, key_equals
from conductor.db.session import Row, Session, rows_as_dict
from conductor.db.values import lookup_text
from conductor.handlers import api
from schemas import exceptions
from schemas.context import RequestContext

instances = Instance.__table__
user_meta = InstanceMetadata.__table__
system_meta = InstanceSystemMetadata.__table__


async def _refuse_foreign(session: Session, context: RequestContext,
                          instance_uuid: Any) -> None:
    """Writes about another project's instance change nothing and answer as for a
    missing one (isolation, api-compute.md §1.1); an unknown uuid is not refused."""
    key = lookup_text(instance_uuid)
    if key is not None and await session.foreign(context, Instance, instances.c.uuid == key):
        raise exceptions.InstanceNotFound(instance_id=instance_uuid)


def _metadata_dict(values: Any, what: str) -> dict[Any, Any]:
    if not isinstance(values, dict):
        raise exceptions.InvalidInput(reason=f"{what} must be a dict of key -> value, got "
                                      f"{type(values).__name__}")
    return values


async def _visible_items(session: Session, context: RequestContext, table: Table,
                         instance_uuid: Any, read_deleted: str | None) -> list[Row]:
    return await session.all(context, table, key_equals(table.c.instance_uuid, instance_uuid),
                             read_deleted=read_deleted)


async def replace_metadata(session: Session, context: RequestContext, table: Table,
                           instance_uuid: Any, metadata: Any, delete: Any,
                           read_deleted: str | None = "no") -> None:
    """``instance_[system_]metadata_update``: rows found with ``read_deleted`` (None: the
    context's); with ``delete``, keys not in ``metadata`` get a flag-only soft delete."""
    given = _metadata_dict(metadata, "metadata")
    await _refuse_foreign(session, context, instance_uuid)
    # Convert first, so a value the column refuses writes nothing.
    wanted = [session.check(table, {"key": k, "value": v, "instance_uuid": instance_uuid})
              for k, v in given.items()]
    items = await _visible_items(session, context, table, instance_uuid, read_deleted)
    await keyvalue.merge(session, table, items, wanted, bool(delete))


async def _delete_key(session: Session, context: RequestContext, table: Table,
                      instance_uuid: Any, key: Any, read_deleted: str | None) -> None:
    uuid_key, item_key = lookup_text(instance_uuid), lookup_text(key)
    if uuid_key is None or item_key is None:
        return
    await _refuse_foreign(session, context, instance_uuid)
    visible = deleted_filter(table, read_deleted or context.read_deleted)
    await session.soft_delete_where(table, table.c.instance_uuid == uuid_key,
                                    table.c.key == item_key,
                                    *(() if visible is None else (visible,)))


# --- user metadata: deleted rows never ---------------------------------------------------

@api
async def instance_metadata_get(session: Session, context: RequestContext,
                                instance_uuid: Any) -> dict[Any, Any]:
    # id order: with duplicate keys the newest row wins
    return rows_as_dict(await _visible_items(session, context, user_meta, instance_uuid, "no"))


@api
async def instance_metadata_delete(session: Session, context: RequestContext,
                                   instance_uuid: Any, key: Any) -> None:
    await _delete_key(session, context, user_meta, instance_uuid, key, "no")


@api
async def instance_metadata_update(session: Session, context: RequestContext,
                                   instance_uuid: Any, metadata: Any, delete: Any) -> Any:
    await replace_metadata(session, context, user_meta, instance_uuid, metadata, delete)
    return metadata


# --- system metadata: deleted rows per context -------------------------------------------

@api
async def instance_system_metadata_get(session: Session, context: RequestContext,
                                       instance_uuid: Any) -> dict[Any, Any]:
    return rows_as_dict(await _visible_items(session, context, system_meta, instance_uuid,
                                             None))


@api
async def instance_system_metadata_delete(session: Session, context: RequestContext,
                                          instance_uuid: Any, key: Any) -> None:
    await _delete_key(session, context, system_meta, instance_uuid, key, None)


@api
async def instance_system_metadata_update(session: Session, context: RequestContext,
                                          instance_uuid: Any, metadata: Any,
                                          delete: Any) -> None:
    await replace_metadata(session, context, system_meta, instance_uuid, metadata, delete,
                           read_deleted=None)


# --- info cache: one row per instance, deleted or not ------------------------------------

@api
async def instance_info_cache_get(session: Session, context: RequestContext,
                                  instance_uuid: Any) -> Row | None:
    return await session.get_by(context, InstanceInfoCache, "instance_uuid", instance_uuid,
                                read_deleted="yes")


async def _update_cache(session: Session, context: RequestContext, instance_uuid: Any,
                        values: Any, existing: Row | None = None) -> Row:
    await _refuse_foreign(session, context, instance_uuid)
    cache = existing if existing is not None else await instance_info_cache_get(
        session, context, instance_uuid)
    if cache is not None and cache["deleted"]:
        return cache
    if cache is not None:
        return await session.update(InstanceInfoCache, cache, values, echo=values)
    if values is not None and not isinstance(values, dict):
        raise exceptions.InvalidInput(reason=f"values must be a dict, got "
                                      f"{type(values).__name__}")
    values = dict(values or {}, instance_uuid=instance_uuid)
    return await session.insert(InstanceInfoCache, values, echo=values)


async def delete_info_cache(session: Session, context: RequestContext, instance_uuid: Any,
                            existing: Row | None = None) -> Row:
    """``instance_info_cache_delete``; ``existing`` is the cache row if already loaded
    (it is updated in place)."""
    return await _update_cache(session, context, instance_uuid,
                               {"deleted": True, "deleted_at": utcnow()}, existing)


@api
async def instance_info_cache_create(session: Session, context: RequestContext,
                                     values: Any) -> Row:
    if isinstance(values, dict):
        await _refuse_foreign(session, context, values.get("instance_uuid"))
    return await session.insert(InstanceInfoCache, values, echo=values)


@api
async def instance_info_cache_update(session: Session, context: RequestContext,
                                     instance_uuid: Any, values: Any) -> Row:
    return await _update_cache(session, context, instance_uuid, values)


@api
async def instance_info_cache_delete(session: Session, context: RequestContext,
                                     instance_uuid: Any) -> None:
    await delete_info_cache(session, context, instance_uuid)

