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

import msgpack  # untyped: see [tool.mypy] in pyproject.toml

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


# Bounds on what one message may make the decoder do.  Every container extension (tuple,
# set, frozenset, timedelta, condition) is decoded by a nested ``msgpack.unpackb`` called
# from the extension hook, and each nesting level costs C stack: a few hundred levels
# crash CPython.  So the levels share one budget per message; within a level, msgpack's
# own explicit stack (not recursion) bounds plain arrays and maps.
MAX_EXT_DEPTH = 32
# Numbers are checked before conversion: int(Decimal("1e1000000")) runs for many seconds.
MAX_DECIMAL_CHARS = 100
MAX_DECIMAL_EXPONENT = 1000  # Nova's numbers are far smaller
MAX_BIGINT_CHARS = 80  # 2**256 has 78 digits; no column holds more than 2**64
MAX_TEMPORAL_CHARS = 64  # the longest ISO datetime with offset is 32
# A request's decoding is bounded in work, not only in bytes: 8 MiB of one-byte empty arrays
# or sets otherwise cost seconds of the event loop and hundreds of MB; within these, under
# 0.1 s.  The largest calls Nova makes (a batch of 1000 calls with their contexts, filters
# listing 10,000 uuids) need a fifth of the values; 10,000 UUID objects and a datetime per
# call of such a batch, half the extension values.
MAX_REQUEST_VALUES = 250_000
MAX_REQUEST_EXTENSIONS = 25_000


def _text(data: bytes, limit: int, what: str) -> str:
    if len(data) > limit:
        raise ValueError(f"{what} of {len(data)} bytes exceeds the limit of {limit}")
    return data.decode("ascii")


def _decimal(data: bytes) -> decimal.Decimal:
    value = decimal.Decimal(_text(data, MAX_DECIMAL_CHARS, "decimal"))
    if not value.is_finite():
        raise ValueError("a decimal must be finite")
    exponent = value.as_tuple().exponent
    # The exponent, not the adjusted one: 0E-999999 is as costly to quantize as 1E999999.
    if not isinstance(exponent, int) or abs(exponent) > MAX_DECIMAL_EXPONENT:
        raise ValueError(f"decimal exponent beyond ±{MAX_DECIMAL_EXPONENT}")
    return value


def _bigint(data: bytes) -> int:
    text = _text(data, MAX_BIGINT_CHARS, "big integer")
    if not text.lstrip("-").isdigit():  # int() would also take "1_000" and spaces
        raise ValueError("a big integer is decimal digits")
    return int(text)


class _Decoder:
    """One message's decoding: the extension hook, its nesting budget, and (for requests)
    the budget of values."""

    def __init__(self, max_values: int | None = None, size: int = 0) -> None:
        self.depth = 0
        # None: unbounded (replies, events).  Else the values still allowed: every array,
        # map entry and extension value costs one, and every container one more.
        self.remaining = max_values
        self.extensions = 0
        # Every value costs at least one byte of the message, nested ones included, so a
        # message of ``size`` bytes no longer than the budget cannot exceed it: no hook
        # per container (most calls are a few hundred bytes).
        self.counting = max_values is not None and size > max_values

    def nested(self, data: bytes) -> Any:
        if self.depth >= MAX_EXT_DEPTH:
            raise ValueError(f"extension types nested deeper than {MAX_EXT_DEPTH}")
        self.depth += 1
        try:
            return self.unpack(data)
        finally:
            self.depth -= 1

    def unpack(self, data: bytes) -> Any:
        if not self.counting or self.remaining is None:
            return msgpack.unpackb(data, ext_hook=self.ext_hook, raw=False,
                                   strict_map_key=False, use_list=True, timestamp=0)
        # The hooks run as each container completes, so counting there stops a message
        # of many small containers within about one budget; the length caps refuse one
        # huge container from its header, before any of it is built.
        room = max(self.remaining, 0)
        return msgpack.unpackb(data, ext_hook=self.ext_hook, raw=False,
                               strict_map_key=False, use_list=True, timestamp=0,
                               list_hook=self.list_hook, object_pairs_hook=self.pairs_hook,
                               max_array_len=room, max_map_len=room // 2)

    def _spend(self, values: int) -> None:
        assert self.remaining is not None
        self.remaining -= values
        if self.remaining < 0:
            raise ValueError("too many values in one message (the limit is "
                             f"{MAX_REQUEST_VALUES})")

    def list_hook(self, items: list[Any]) -> list[Any]:
        self._spend(1 + len(items))
        return items

    def pairs_hook(self, pairs: list[tuple[Any, Any]]) -> dict[Any, Any]:
        # Pairs, not the dict: a map repeating one key costs its every entry to decode.
        self._spend(1 + 2 * len(pairs))
        return dict(pairs)

    def ext_hook(self, code: int, data: bytes) -> Any:
        if self.remaining is not None:
            self.extensions += 1
            if self.extensions > MAX_REQUEST_EXTENSIONS:
                raise ValueError("too many extension values in one message (the limit is "
                                 f"{MAX_REQUEST_EXTENSIONS})")
        if code == EXT_DATETIME:
            return dt.datetime.fromisoformat(_text(data, MAX_TEMPORAL_CHARS, "datetime"))
        if code == EXT_DATE:
            return dt.date.fromisoformat(_text(data, MAX_TEMPORAL_CHARS, "date"))
        if code == EXT_TIME:
            return dt.time.fromisoformat(_text(data, MAX_TEMPORAL_CHARS, "time"))
        if code == EXT_UUID:
            return uuid.UUID(bytes=data)
        if code == EXT_DECIMAL:
            return _decimal(data)
        if code == EXT_BIGINT:
            return _bigint(data)
        items = self.nested(data)
        if code == EXT_TUPLE:
            return tuple(_list(items, "tuple"))
        if code == EXT_SET:
            return set(_list(items, "set"))
        if code == EXT_FROZENSET:
            return frozenset(_list(items, "frozenset"))
        if code == EXT_TIMEDELTA:
            parts = _list(items, "timedelta")
            if len(parts) != 3 or not all(type(p) is int for p in parts):
                raise ValueError("a timedelta is [days, seconds, microseconds]")
            return dt.timedelta(days=parts[0], seconds=parts[1], microseconds=parts[2])
        if code == EXT_CONDITION:
            return Condition.from_wire(items)
        raise ValueError(f"unknown msgpack extension type {code}")


def _list(items: Any, what: str) -> list[Any]:
    if not isinstance(items, list):
        raise ValueError(f"a {what} travels as an array")
    return items


def packb(obj: Any) -> bytes:
    """Encode ``obj``; raises TypeError naming the first type the wire cannot carry."""
    data: bytes = msgpack.packb(obj, default=_default, use_bin_type=True,
                                strict_types=True, datetime=False)
    return data


def unpackb(data: bytes, *, max_size: int = 0, request: bool = False) -> Any:
    """Decode bytes from :func:`packb`; raises ValueError on anything malformed.

    Nesting, numbers and date strings are bounded before conversion (see the limits
    above), so a hostile message costs time linear in its size; a ``request`` (what a
    stranger may send) is also held to :data:`MAX_REQUEST_VALUES` and
    :data:`MAX_REQUEST_EXTENSIONS`.
    """
    if max_size and len(data) > max_size:
        raise ValueError(f"message of {len(data)} bytes exceeds the limit of {max_size}")
    try:
        return _Decoder(MAX_REQUEST_VALUES if request else None, len(data)).unpack(data)
    except Exception as exc:  # anything a hostile payload provokes, extension hooks included
        raise ValueError(f"undecodable message: {type(exc).__name__}: {exc}"[:300]) \
            from exc
