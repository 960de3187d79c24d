"""Key/value child rows (metadata, extra specs): Nova's update-or-create merge, the
``{key: value}`` dicts getters return for them, and the create and destroy of a type with
its extra specs (flavors, volume types)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table

from conductor.db.query import table_of
from conductor.db.session import Row, Session, rows_as_dict
from schemas import exceptions
from schemas.context import RequestContext


def with_specs_dict(row: Row, key: str = "extra_specs") -> Row:
    """``row`` with its loaded ``key`` rows as ``{key: value}`` (flavor and volume type
    getters, api-compute.md §3.8)."""
    row[key] = rows_as_dict(row[key])
    return row


async def items_dict(session: Session, context: RequestContext, model: Any, *where: Any,
                     read_deleted: str | None = None) -> dict[Any, Any]:
    """The key/value rows of ``model`` matching ``where`` as ``{key: value}``, read in id
    order so that of duplicate keys the newest row wins (metadata and extra-spec getters)."""
    return rows_as_dict(await session.all(context, model, *where, read_deleted=read_deleted))


@dataclass(frozen=True)
class TypeSpecs:
    """A type whose rows own key/value ``extra_specs`` rows of ``specs`` through
    ``parent_key`` (flavors, volume types: Nova wrote the two alike)."""

    model: Any
    specs: Any
    parent_key: str

    async def insert(self, session: Session, values: Row) -> Row:
        """Insert a type row from ``values`` and a spec row for each item of
        ``values["extra_specs"]``; the result echoes ``values``, extra specs as given.
        Anything wrong while building the rows is ``DBError`` (Nova wraps it:
        api-compute.md §3.8 step 4, api-network-quota-storage.md §5.3)."""
        given = values.get("extra_specs") or {}
        try:
            if not isinstance(given, dict):
                raise exceptions.InvalidInput(reason=f"{table_of(self.model).name}.extra_specs "
                                              f"must be a dict of key -> value")
            cols = session.check(self.model, values, allowed_extra=("extra_specs",))
            spec_rows = [session.check(self.specs, {"key": k, "value": v})
                         for k, v in given.items()]
        except exceptions.InvalidInput as exc:
            raise exceptions.DBError(exc) from None
        row = await session.insert(self.model, cols, checked=True, echo=values)
        for spec in spec_rows:
            await session.insert(self.specs, {**spec, self.parent_key: row["id"]}, checked=True)
        row["extra_specs"] = dict(given)
        return row

    async def destroy(self, session: Session, row: Row) -> None:
        """Bulk soft delete of the type row and of every spec row of it, deleted ones
        included, as Nova's unfiltered bulk updates do (``updated_at`` kept)."""
        await session.soft_delete_where(self.model, table_of(self.model).c.id == row["id"])
        await session.soft_delete_where(self.specs,
                                        table_of(self.specs).c[self.parent_key] == row["id"])


async def merge(session: Session, table: Table, items: list[Row], wanted: list[Row],
                delete: bool) -> None:
    """Make the visible ``items`` hold the checked ``wanted`` rows' key/value pairs.

    Every visible row of a key gets the new value, so a duplicate cannot shadow it; a key
    with no row gets one; with ``delete``, rows whose key is not wanted get a flag-only
    soft delete (``deleted_at`` stays NULL, as Nova saves them: api-compute.md §1.3).
    """
    wanted_keys = {w["key"] for w in wanted}
    by_key: dict[Any, list[Row]] = {}
    for item in items:
        by_key.setdefault(item["key"], []).append(item)
        if delete and item["key"] not in wanted_keys:
            await session.soft_delete(table, item, flag_only=True)
    for row in wanted:
        existing = by_key.get(row["key"])
        if existing:
            for item in existing:
                await session.update(table, item, {"value": row["value"]}, checked=True)
        else:
            await session.insert(table, row, checked=True)
