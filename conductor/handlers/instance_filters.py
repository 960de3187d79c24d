"""``instance_get_all_by_filters`` (api-compute.md §3.6): filters, order and paging."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    DateTime,
    String,
    and_,
    case,
    cast,
    false,
    func,
    literal,
    or_,
    select,
    true,
)

from conductor.db.models import Instance, InstanceMetadata
from conductor.db.query import datetime_text, equals, not_deleted, one_of
from conductor.db.session import Row, Session
from conductor.db.values import convert, lookup_int
from conductor.handlers import api
from conductor.handlers.instances import LISTED, load_by_uuid
from schemas import exceptions
from schemas.context import RequestContext

instances = Instance.__table__
user_meta = InstanceMetadata.__table__

EXACT = ("project_id", "user_id", "image_ref", "vm_state", "instance_type_id", "uuid")
SOFT_DELETED = "soft-delete"
_LISTS = (list, tuple, set, frozenset)


def _exact(column: Any, value: Any) -> ColumnElement[bool]:
    if not isinstance(value, _LISTS):
        return equals(column, value)
    # SQL IN, as Nova's in_(): a None among the values never matches NULL.
    return one_of(column, [v for v in value if v is not None])


def _metadata(value: Any) -> list[ColumnElement[bool]]:
    # Key and value are tested independently, each on some live item (a Nova quirk).
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        if not isinstance(item, dict):
            raise exceptions.InvalidInput(reason="the metadata filter takes a dict or a "
                                          "list of dicts")
        for key, val in item.items():
            for column, wanted in ((user_meta.c.key, key), (user_meta.c.value, val)):
                out.append(select(user_meta.c.id).where(
                    user_meta.c.instance_uuid == instances.c.uuid,
                    not_deleted(user_meta), equals(column, wanted)).exists())
    return out


def _as_text(column: Any) -> Any:
    """The column's value as Python's ``str()`` shows it, for a regular expression."""
    ctype = column.type
    if isinstance(ctype, String):
        return column
    if isinstance(ctype, Boolean):
        return case((column == true(), "True"), (column == false(), "False"))
    if isinstance(ctype, DateTime):
        # str(datetime) drops a zero microsecond part; SQLite stores it, PostgreSQL's
        # text form trims trailing zeros, so both are spelled out and then cut.
        return func.replace(datetime_text(column), ".000000", "")
    return cast(column, String)


def _regex(column: Any, value: Any) -> ColumnElement[bool]:
    pattern = str(value)
    try:
        re.compile(pattern)
    except re.error as exc:
        raise exceptions.InvalidInput(reason=f"filter {column.name!r}: {pattern!r:.60} is "
                                      f"not a regular expression: {exc}") from None
    if "\x00" in pattern:
        raise exceptions.InvalidInput(reason=f"filter {column.name!r}: NUL in pattern")
    # NULL never matches (recommended; Nova on SQLite matched the text 'None').
    return _as_text(column).regexp_match(pattern)


def filter_conditions(context: RequestContext, filters: Any) -> list[ColumnElement[bool]]:
    """The WHERE conditions of ``filters``, in Nova's order; ``filters`` is not changed."""
    if filters is None:
        filters = {}
    if not isinstance(filters, dict):
        raise exceptions.InvalidInput(reason=f"filters must be a dict, got "
                                      f"{type(filters).__name__}")
    filters = dict(filters)
    out: list[ColumnElement[bool]] = []
    if "changes-since" in filters:
        since = filters["changes-since"]
        try:
            since = convert(instances, instances.c.updated_at, since)
        except exceptions.InvalidInput:
            since = None
        if since is None:
            raise exceptions.InvalidInput(reason="changes-since must be a datetime")
        out.append(instances.c.updated_at > since)  # NULL (never updated) is excluded
    if "deleted" in filters:
        vm_state = instances.c.vm_state
        if filters.pop("deleted"):
            out.append(or_(instances.c.deleted == true(), vm_state == SOFT_DELETED))
        else:
            # SQL <>: a NULL vm_state is excluded too (a Nova quirk).
            out.append(and_(not_deleted(instances), vm_state != SOFT_DELETED))
    if not context.is_admin:
        filters["project_id"] = context.project_id
    for key in EXACT:
        if key in filters:
            out.append(_exact(instances.c[key], filters.pop(key)))
    if "metadata" in filters:
        out.extend(_metadata(filters.pop("metadata")))
    for key, value in filters.items():
        # Only columns: 'name' is computed, relationships and unknown keys are ignored.
        if isinstance(key, str) and key in instances.c:
            out.append(_regex(instances.c[key], value))
    return out


def _ordered(column: Any, sort_dir: str) -> Any:
    # NULL sorts as the smallest value on both backends, as on SQLite.
    return column.asc().nulls_first() if sort_dir == "asc" else column.desc().nulls_last()


def _after(columns: list[Any], marker: Row, sort_dir: str) -> ColumnElement[bool]:
    """Rows strictly after ``marker`` in the order of ``columns`` (NULL smallest)."""
    def value(column: Any) -> Any:
        # A typed literal: SQLAlchemy refuses < and > against a bare True/False.
        return literal(marker[column.name], column.type)

    criteria = []
    for i, column in enumerate(columns):
        same = [c.is_(None) if marker[c.name] is None else c == value(c)
                for c in columns[:i]]
        if marker[column.name] is None:
            beyond = column.is_not(None) if sort_dir == "asc" else false()
        elif sort_dir == "asc":
            beyond = column > value(column)
        else:
            beyond = or_(column < value(column), column.is_(None))
        criteria.append(and_(*same, beyond))
    return or_(*criteria)


@api
async def instance_get_all_by_filters(session: Session, context: RequestContext,
                                      filters: Any, sort_key: Any = "created_at",
                                      sort_dir: Any = "desc", limit: Any = None,
                                      marker: Any = None) -> list[Row]:
    order_column = instances.c.get(sort_key) if isinstance(sort_key, str) else None
    if order_column is None:
        raise exceptions.InvalidSortKey()  # recommended; Nova raised AttributeError
    if sort_dir not in ("asc", "desc"):
        raise exceptions.InvalidInput(reason=f"sort_dir must be 'asc' or 'desc', got "
                                      f"{sort_dir!r:.60}")
    count = None
    if limit is not None:
        count = lookup_int(limit)
        if count is None or count < 0:
            raise exceptions.InvalidInput(reason=f"limit must be a non-negative integer, "
                                          f"got {limit!r:.60}")
    # The context's read_deleted is ignored: the 'deleted' filter decides.
    stmt = select(instances).where(*filter_conditions(context, filters))
    columns = [order_column, instances.c.created_at, instances.c.id]
    stmt = stmt.order_by(*(_ordered(c, sort_dir) for c in columns))
    if marker is not None:
        try:
            # Looked up as instance_get_by_uuid: read_deleted and scoping apply.
            found = await load_by_uuid(session, context, marker, (), bare=True)
        except exceptions.InstanceNotFound:
            raise exceptions.MarkerNotFound(str(marker)) from None
        stmt = stmt.where(_after(columns, found, sort_dir))
    if count is not None:
        stmt = stmt.limit(count)
    return await session.rows(stmt, LISTED)
