"""Host aggregates, their hosts and metadata (api-compute.md §3.17).

Every aggregate row returned carries ``hosts`` and ``metadetails``, computed from the
``_hosts``/``_metadata`` relationships (models.md §1.2), which drop every row of a deleted
aggregate.  Writers that read-then-write one aggregate's hosts or metadata lock the
aggregate row first, so two concurrent adds cannot both insert.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, select

from conductor.db.keyvalue import items_dict
from conductor.db.models import Aggregate, AggregateHost, AggregateMetadata
from conductor.db.query import deleted_filter, equals, not_deleted
from conductor.db.session import Row, Session
from conductor.db.values import lookup_int
from conductor.handlers import api, plain
from schemas import exceptions
from schemas.context import RequestContext

aggregates = Aggregate.__table__
hosts = AggregateHost.__table__
meta = AggregateMetadata.__table__

JOINS = ("_hosts", "_metadata")



def _dict_arg(value: Any, what: str) -> dict[Any, Any]:
    if not isinstance(value, dict):
        raise exceptions.InvalidInput(reason=f"{what} must be a dict, got "
                                      f"{type(value).__name__}")
    return value


def _visible(context: RequestContext, table: Any) -> tuple[ColumnElement[bool], ...]:
    cond = deleted_filter(table, context.read_deleted)
    return () if cond is None else (cond,)


async def _aggregate(session: Session, context: RequestContext, aggregate_id: Any,
                     joins: tuple[str, ...] = JOINS, *, lock: bool = False) -> Row:
    """The aggregate as ``aggregate_get`` sees it, or ``AggregateNotFound``."""
    return await session.get(
        context, Aggregate, "id", aggregate_id,
        lambda: exceptions.AggregateNotFound(aggregate_id=aggregate_id), joins, lock=lock)


async def _add_metadata(session: Session, aggregate_id: int, metadata: Any,
                        set_delete: Any) -> None:
    given = _dict_arg(metadata, "metadata")
    # Convert everything first, so that a refused value writes nothing.
    wanted = [session.check(meta, {"key": k, "value": v, "aggregate_id": aggregate_id})
              for k, v in given.items()]
    existing = await session.rows(select(meta).where(meta.c.aggregate_id == aggregate_id)
                                  .order_by(meta.c.id))
    keys = {w["key"] for w in wanted}
    if set_delete:
        for item in existing:
            if not item["deleted"] and item["key"] not in keys:
                await session.soft_delete(meta, item, flag_only=True)
    first: dict[str, Row] = {}
    for item in existing:
        first.setdefault(item["key"], item)
    for row in wanted:
        item = first.get(row["key"])
        if item is None:
            await session.insert(meta, row, checked=True)
        elif item["deleted"]:
            await session.update(meta, item, {"deleted": False, "deleted_at": None,
                                              "value": row["value"]}, checked=True)
        else:
            await session.update(meta, item, {"value": row["value"]}, checked=True)


def _on_host(host: Any) -> ColumnElement[bool]:
    return (select(hosts.c.id)
            .where(hosts.c.aggregate_id == aggregates.c.id, not_deleted(hosts),
                   equals(hosts.c.host, host)).exists())


def _with_metadata(key: Any) -> ColumnElement[bool]:
    stmt = select(meta.c.id).where(meta.c.aggregate_id == aggregates.c.id,
                                   not_deleted(meta))
    if key:
        stmt = stmt.where(equals(meta.c.key, key))
    return stmt.exists()


@api
async def aggregate_create(session: Session, context: RequestContext, values: Any,
                           metadata: Any = None) -> Row:
    values = _dict_arg(values, "values")
    if "name" not in values:
        raise exceptions.InvalidInput(reason="aggregate_create: values must contain 'name'")
    if metadata is not None:
        _dict_arg(metadata, "metadata")
    cols = session.check(Aggregate, values)
    # Closes the check-then-insert race of two creates with one name.
    await session.lock("aggregate_create")
    taken = await session.row(session.query(context, Aggregate, read_deleted="no")
                              .where(equals(aggregates.c.name, values["name"])).limit(1))
    if taken is not None:
        raise exceptions.AggregateNameExists(aggregate_name=values["name"])
    row = await session.insert(Aggregate, cols, checked=True, echo=values)
    if metadata:
        await _add_metadata(session, row["id"], metadata, False)
    await session.load(Aggregate, [row], JOINS)
    return row


@api
async def aggregate_get(session: Session, context: RequestContext, aggregate_id: Any) -> Row:
    return await _aggregate(session, context, aggregate_id)


@api
async def aggregate_get_by_host(session: Session, context: RequestContext, host: Any,
                                key: Any = None) -> list[Row]:
    stmt = session.query(context, Aggregate).where(_on_host(host))
    if key:
        stmt = stmt.where(_with_metadata(key))
    return await session.rows(stmt.order_by(aggregates.c.id), JOINS)


@api
async def aggregate_metadata_get_by_host(session: Session, context: RequestContext,
                                         host: Any, key: Any = None) -> dict[Any, set[Any]]:
    qualifying: Select[Any] = (session.query(context, Aggregate)
                               .where(_on_host(host), _with_metadata(key))
                               .with_only_columns(aggregates.c.id))
    # The metadata as the aggregates' _metadata relationship holds it.
    stmt = (select(meta.c.key, meta.c.value)
            .select_from(meta.join(aggregates, aggregates.c.id == meta.c.aggregate_id))
            .where(meta.c.aggregate_id.in_(qualifying), not_deleted(meta),
                   not_deleted(aggregates))
            .order_by(meta.c.id))
    if key:
        # Recommended: only the key asked for (Nova 2012.2 returned every key).
        stmt = stmt.where(equals(meta.c.key, key))
    out: dict[Any, set[Any]] = {}
    for item_key, value in (await session.execute(stmt)).all():
        out.setdefault(item_key, set()).add(value)
    return out


@api
async def aggregate_update(session: Session, context: RequestContext, aggregate_id: Any,
                           values: Any) -> Row:
    row = await _aggregate(session, context, aggregate_id, (), lock=True)
    values = dict(_dict_arg(values, "values"))
    metadata = values.pop("metadata", None)
    cols = session.check(Aggregate, values)
    if metadata is not None:
        await _add_metadata(session, row["id"], metadata, True)
    # The name is not re-checked for uniqueness (Nova's behaviour).
    await session.update(Aggregate, row, cols, checked=True, echo=values)
    await session.load(Aggregate, [row], JOINS)
    return row


@api
async def aggregate_delete(session: Session, context: RequestContext,
                           aggregate_id: Any) -> None:
    key = lookup_int(aggregate_id)
    deleted = 0
    if key is not None:
        deleted = await session.soft_delete_where(Aggregate, aggregates.c.id == key,
                                                  *_visible(context, aggregates))
    if not deleted:
        raise exceptions.AggregateNotFound(aggregate_id=aggregate_id)
    # Host rows stay: the _hosts join hides them once the aggregate is deleted.
    await session.soft_delete_where(AggregateMetadata, meta.c.aggregate_id == key,
                                    *_visible(context, meta))


aggregate_get_all = plain.rows("aggregate_get_all", Aggregate, joins=JOINS)


@api
async def aggregate_metadata_add(session: Session, context: RequestContext,
                                 aggregate_id: Any, metadata: Any,
                                 set_delete: Any = False) -> None:
    row = await _aggregate(session, context, aggregate_id, (), lock=True)
    await _add_metadata(session, row["id"], metadata, set_delete)


@api
async def aggregate_metadata_get(session: Session, context: RequestContext,
                                 aggregate_id: Any) -> dict[Any, Any]:
    row = await _aggregate(session, context, aggregate_id, ())
    return await items_dict(session, context, AggregateMetadata,
                            meta.c.aggregate_id == row["id"])


@api
async def aggregate_metadata_delete(session: Session, context: RequestContext,
                                    aggregate_id: Any, key: Any) -> None:
    row = await _aggregate(session, context, aggregate_id, ())
    deleted = await session.soft_delete_where(
        AggregateMetadata, meta.c.aggregate_id == row["id"], equals(meta.c.key, key),
        *_visible(context, meta))
    if not deleted:
        raise exceptions.AggregateMetadataNotFound(aggregate_id=aggregate_id,
                                                   metadata_key=key)


@api
async def aggregate_host_add(session: Session, context: RequestContext, aggregate_id: Any,
                             host: Any) -> None:
    row = await _aggregate(session, context, aggregate_id, (), lock=True)
    found = await session.rows(select(hosts).where(hosts.c.aggregate_id == row["id"],
                                                   equals(hosts.c.host, host))
                               .order_by(hosts.c.id))
    if any(not h["deleted"] for h in found):
        raise exceptions.AggregateHostExists(host=host, aggregate_id=aggregate_id)
    if found:
        await session.update(hosts, found[0], {"deleted": False, "deleted_at": None},
                             checked=True)
    else:
        await session.insert(AggregateHost, {"host": host, "aggregate_id": row["id"]})


@api
async def aggregate_host_get_all(session: Session, context: RequestContext,
                                 aggregate_id: Any) -> list[Any]:
    row = await _aggregate(session, context, aggregate_id, ())
    return await session.scalars(session.query(context, AggregateHost)
                                 .where(hosts.c.aggregate_id == row["id"])
                                 .order_by(hosts.c.id).with_only_columns(hosts.c.host))


@api
async def aggregate_host_delete(session: Session, context: RequestContext,
                                aggregate_id: Any, host: Any) -> None:
    row = await _aggregate(session, context, aggregate_id, ())
    deleted = await session.soft_delete_where(
        AggregateHost, hosts.c.aggregate_id == row["id"], equals(hosts.c.host, host),
        *_visible(context, hosts))
    if not deleted:
        raise exceptions.AggregateHostNotFound(aggregate_id=aggregate_id, host=host)
