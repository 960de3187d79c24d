"""msgpack with extension types, so that what Nova returns survives the wire exactly.

Plain msgpack turns tuples into lists and knows nothing of datetimes, sets or UUIDs; Nova
returns all of them (``(old, new)`` tuples, sets of aggregate metadata values, naive UTC
datetimes).  Each gets an extension code; anything else is refused with a TypeError that
names the type, before a byte is sent.
"""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from typing import Any

import msgpack

from schemas.conditions import Condition

EXT_DATETIME = 1
EXT_DATE = 2
EXT_UUID = 3
EXT_DECIMAL = 4
EXT_SET = 5
EXT_TUPLE = 6
EXT_FROZENSET = 7
EXT_TIME = 8
EXT_TIMEDELTA = 9
EXT_CONDITION = 10
EXT_BIGINT = 11


def _default(obj: Any) -> Any:
    # Order matters: datetime is a subclass of date.
    if isinstance(obj, dt.datetime):
        return msgpack.ExtType(EXT_DATETIME, obj.isoformat().encode())
    if isinstance(obj, dt.date):
        return msgpack.ExtType(EXT_DATE, obj.isoformat().encode())
    if isinstance(obj, tuple):
        return msgpack.ExtType(EXT_TUPLE, packb(list(obj)))
    if isinstance(obj, set):
        return msgpack.ExtType(EXT_SET, packb(_sorted(obj)))
    if isinstance(obj, frozenset):
        return msgpack.ExtType(EXT_FROZENSET, packb(_sorted(obj)))
    if isinstance(obj, uuid.UUID):
        return msgpack.ExtType(EXT_UUID, obj.bytes)
    if isinstance(obj, decimal.Decimal):
        return msgpack.ExtType(EXT_DECIMAL, str(obj).encode())
    if isinstance(obj, dt.time):
        return msgpack.ExtType(EXT_TIME, obj.isoformat().encode())
    if isinstance(obj, dt.timedelta):
        return msgpack.ExtType(EXT_TIMEDELTA,
                               packb([obj.days, obj.seconds, obj.microseconds]))
    if isinstance(obj, Condition):
        return msgpack.ExtType(EXT_CONDITION, packb(obj.to_wire()))
    if isinstance(obj, bool):
        return obj
    if isinstance(obj, int):
        # strict_types refuses int subclasses (IntEnum); big ints exceed msgpack's 64 bits.
        if -(2**63) <= obj < 2**64:
            return int(obj)
        return msgpack.ExtType(EXT_BIGINT, str(int(obj)).encode())
    if isinstance(obj, str):
        return str(obj)
    if isinstance(obj, float):
        return float(obj)
    if isinstance(obj, dict):
        return dict(obj)
    if isinstance(obj, list):
        return list(obj)
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return bytes(obj)
    raise TypeError(f"cannot encode object of type {type(obj).__module__}."
                    f"{type(obj).__qualname__} for the wire: {obj!r:.80}")


def _sorted(values: set[Any] | frozenset[Any]) -> list[Any]:
    try:
        return sorted(values)
    except TypeError:
        return list(values)


def _ext_hook(code: int, data: bytes) -> Any:
    if code == EXT_DATETIME:
        return dt.datetime.fromisoformat(data.decode())
    if code == EXT_DATE:
        return dt.date.fromisoformat(data.decode())
    if code == EXT_TUPLE:
        return tuple(unpackb(data))
    if code == EXT_SET:
        return set(unpackb(data))
    if code == EXT_FROZENSET:
        return frozenset(unpackb(data))
    if code == EXT_UUID:
        return uuid.UUID(bytes=data)
    if code == EXT_DECIMAL:
        return decimal.Decimal(data.decode())
    if code == EXT_TIME:
        return dt.time.fromisoformat(data.decode())
    if code == EXT_TIMEDELTA:
        days, seconds, micro = unpackb(data)
        return dt.timedelta(days=days, seconds=seconds, microseconds=micro)
    if code == EXT_CONDITION:
        return Condition.from_wire(unpackb(data))
    if code == EXT_BIGINT:
        return int(data.decode())
    raise ValueError(f"unknown msgpack extension type {code}")


def packb(obj: Any) -> bytes:
    """Encode ``obj``; raises TypeError naming the first type the wire cannot carry."""
    return msgpack.packb(obj, default=_default, use_bin_type=True, strict_types=True,
                         datetime=False)


def unpackb(data: bytes, *, max_size: int = 0) -> Any:
    """Decode bytes from :func:`packb`; raises ValueError on anything malformed."""
    if max_size and len(data) > max_size:
        raise ValueError(f"message of {len(data)} bytes exceeds the limit of {max_size}")
    try:
        return msgpack.unpackb(data, ext_hook=_ext_hook, raw=False, strict_map_key=False,
                               use_list=True, timestamp=0)
    except Exception as exc:  # anything a hostile payload provokes, extension hooks included
        raise ValueError(f"undecodable message: {type(exc).__name__}: {exc}") from exc
