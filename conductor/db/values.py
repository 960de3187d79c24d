"""Checking caller values against columns before anything is written.

Nova hands ``values`` to the ORM and lets the driver complain; over a shared bus that
turns a typo into a driver traceback.  Here every value is converted losslessly to the
column's type (an int for a string column, a numeric string for an integer column, an ISO
string for a datetime) or refused with ``InvalidInput`` naming the column.  Keys that are
not columns are ignored as Nova ignores them (api-compute.md §1.5), logged once per
function and key, or refused when the conductor runs with ``--strict-values``.

Bounded per message: a ``values`` map holds at most ``MAX_VALUES_KEYS`` keys (no Nova
table has a tenth as many columns; more is InvalidInput before any key is looked at),
the once-per-key warnings remember at most ``MAX_WARNED`` keys, and caller keys are
clipped in log lines.
"""

from __future__ import annotations

import datetime as dt
import decimal
import logging
import math
import uuid
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Boolean, Column, Date, DateTime, Float, Integer, String, Table, Text

from schemas import exceptions

log = logging.getLogger(__name__)

MAX_VALUES_KEYS = 1000
MAX_WARNED = 1024
# Least recently warned first; bounded so that unknown keys cannot grow memory for good.
_warned: OrderedDict[tuple[str, str, str], None] = OrderedDict()
_INT64 = (-(2**63), 2**63 - 1)


def _invalid(table: Table, column: str, reason: str) -> exceptions.InvalidInput:
    return exceptions.InvalidInput(reason=f"{table.name}.{column}: {reason}")


def required(table: Table, column: str) -> exceptions.InvalidInput:
    return _invalid(table, column, "is required")


def convert(table: Table, col: Column[Any], value: Any) -> Any:
    """``value`` as column ``col`` stores it, or InvalidInput."""
    name = col.name
    if value is None:
        # An explicit None bypasses the column default, so NOT NULL refuses it.
        if not col.nullable and not col.primary_key:
            raise _invalid(table, name, "may not be null")
        return None
    ctype = col.type
    if isinstance(ctype, Boolean):
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise _invalid(table, name, f"expects a boolean, got {_show(value)}")
    if isinstance(ctype, Integer):
        out = _to_int(value)
        if out is None:
            raise _invalid(table, name, f"expects an integer, got {_show(value)}")
        if not _INT64[0] <= out <= _INT64[1]:
            raise _invalid(table, name, f"integer {out} is out of range")
        if type(ctype) is Integer and not -(2**31) <= out < 2**31:
            raise _invalid(table, name, f"integer {out} does not fit a 32-bit column")
        return out
    if isinstance(ctype, Float):
        if isinstance(value, bool):
            raise _invalid(table, name, f"expects a number, got {_show(value)}")
        if isinstance(value, (int, float, decimal.Decimal)):
            out = float(value)
        elif isinstance(value, str):
            try:
                out = float(value)
            except ValueError:
                raise _invalid(table, name, f"expects a number, got {_show(value)}") from None
        else:
            raise _invalid(table, name, f"expects a number, got {_show(value)}")
        if math.isnan(out) or math.isinf(out):
            raise _invalid(table, name, "expects a finite number")
        return out
    if isinstance(ctype, DateTime):
        return _to_datetime(table, name, value)
    if isinstance(ctype, Date):
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value)
            except ValueError:
                pass
        raise _invalid(table, name, f"expects a date, got {_show(value)}")
    if isinstance(ctype, (String, Text)):
        if isinstance(value, str):
            out = value
        elif isinstance(value, bool):
            raise _invalid(table, name, f"expects a string, got {_show(value)}")
        elif isinstance(value, (int, float, decimal.Decimal, uuid.UUID)):
            out = str(value)
        else:
            raise _invalid(table, name, f"expects a string, got {_show(value)}")
        if "\x00" in out:
            raise _invalid(table, name, "strings may not contain NUL characters")
        length = getattr(ctype, "length", None)
        if length is not None and len(out) > length:
            raise _invalid(table, name, f"is at most {length} characters, got {len(out)}")
        return out
    return value


def _to_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else None
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            return None
    return None


def _to_datetime(table: Table, name: str, value: Any) -> dt.datetime:
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise _invalid(table, name, f"expects a datetime, got {_show(value)}") from None
    elif isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    if not isinstance(value, dt.datetime):
        raise _invalid(table, name, f"expects a datetime, got {_show(value)}")
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def _show(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:60]}{'...' if len(text) > 60 else ''}"


def check_values(table: Table, values: Any, function: str, *,
                 allowed_extra: Iterable[str] = (), strict: bool = False) -> dict[str, Any]:
    """The column part of ``values``, converted; extra keys logged or refused.

    ``allowed_extra`` are relationship keys the calling function handles itself;
    ``strict`` refuses unknown keys whatever ``--strict-values`` says (families that are
    ours, not Nova's, such as database snapshots).
    """
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise exceptions.InvalidInput(reason=f"values must be a dict, got "
                                      f"{type(values).__name__}")
    if len(values) > MAX_VALUES_KEYS:
        raise exceptions.InvalidInput(reason=f"{table.name}: values may hold at most "
                                      f"{MAX_VALUES_KEYS} keys, not {len(values)}")
    columns = table.c
    out: dict[str, Any] = {}
    extra = set(allowed_extra)
    for key, value in values.items():
        if not isinstance(key, str):
            raise exceptions.InvalidInput(reason=f"{table.name}: value keys must be "
                                          f"strings, got {_show(key)}")
        col = columns.get(key)
        if col is not None:
            out[key] = convert(table, col, value)
        elif key not in extra:
            _unknown_key(table, key, function, strict)
    return out


def _unknown_key(table: Table, key: str, function: str, strict: bool = False) -> None:
    shown = _clip(key)
    if strict:
        raise exceptions.InvalidInput(reason=f"{table.name} has no column {shown}")
    marker = (function, table.name, key)
    if marker in _warned:
        _warned.move_to_end(marker)
        return
    _warned[marker] = None
    if len(_warned) > MAX_WARNED:
        _warned.popitem(last=False)
    log.warning("%s: ignoring key %s, which is not a column of %s", function, shown,
                table.name)


def _clip(key: str) -> str:
    text = repr(key)
    return text if len(text) <= 80 else f"{text[:80]}... ({len(key)} characters)"


def datetime_arg(name: str, column: Column[Any], value: Any) -> dt.datetime | None:
    """A datetime argument ``name`` compared with ``column`` (the bounds of the
    ``*_get_active_by_window`` functions): None stays None, and a value that is no
    datetime is ``InvalidInput`` naming the argument rather than the column."""
    if value is None:
        return None
    try:
        return convert(column.table, column, value)  # type: ignore[no-any-return]
    except exceptions.InvalidInput:
        raise exceptions.InvalidInput(
            reason=f"{name} must be a datetime, got {type(value).__name__}") from None


def check_value(table: Table, column: str, value: Any) -> Any:
    """One filter or lookup value, converted for ``table.column`` (None passes through)."""
    if value is None:
        return None
    return convert(table, table.c[column], value)


_INT32 = (-(2**31), 2**31 - 1)


def lookup_int(value: Any, *, big: bool = False) -> int | None:
    """An integer key as a lookup sees it; None when it cannot name a row (api §1.4).

    Ids are 32-bit ``Integer`` columns: asyncpg refuses to bind a larger value to one, so
    such a value names no row, as on SQLite.  ``big`` allows BigInteger's range.
    """
    out = _to_int(value) if not isinstance(value, bool) else None
    low, high = _INT64 if big else _INT32
    if out is None or not low <= out <= high:
        return None
    return out


NO_MATCH: Any = object()


def lookup_text(value: Any) -> str | None:
    """``value`` as a text column compares it; None when no stored string can equal it.

    Nova's tests ran on SQLite, where ``flavorid = 1`` finds the flavorid ``'1'`` and a
    dict simply matches nothing; PostgreSQL refuses such a comparison outright.
    """
    if isinstance(value, str):
        # PostgreSQL text cannot hold NUL, so no stored value can equal this one.
        return None if "\x00" in value else value
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, (int, float, decimal.Decimal, uuid.UUID)):
        return str(value)
    return None


def lookup_value(col: Column[Any], value: Any) -> Any:
    """``value`` as an equality lookup on ``col`` sees it, or NO_MATCH (never an error)."""
    ctype = col.type
    if isinstance(ctype, Boolean):
        if isinstance(value, bool) or (isinstance(value, int) and value in (0, 1)):
            return bool(value)
        return NO_MATCH
    if isinstance(ctype, Integer):
        out = lookup_int(value, big=type(ctype) is not Integer)
        return NO_MATCH if out is None else out
    if isinstance(ctype, (String, Text)):
        out_text = lookup_text(value)
        return NO_MATCH if out_text is None else out_text
    if isinstance(ctype, Float):
        if isinstance(value, bool) or not isinstance(value, (int, float, decimal.Decimal)):
            return NO_MATCH
        return float(value)
    if isinstance(ctype, (DateTime, Date)):
        try:
            return convert(col.table, col, value)  # type: ignore[arg-type]
        except exceptions.InvalidInput:
            return NO_MATCH
    return value
