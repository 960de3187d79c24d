"""Key/value child rows (metadata, extra specs): Nova's update-or-create merge, and the
``{key: value}`` dicts getters return for them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table

from conductor.db.session import Row, Session, rows_as_dict


def with_specs_dict(row: Row, key: str = "extra_specs") -> Row:
    """``row`` with its loaded ``key`` rows as ``{key: value}`` (flavor and volume type
    getters, api-compute.md §3.8)."""
    row[key] = rows_as_dict(row[key])
    return row


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
