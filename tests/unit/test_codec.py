import datetime as dt
import decimal
import enum
import uuid

import pytest

from schemas import codec
from schemas.conditions import constraint, equal_any, not_equal

SAMPLES = [
    None, True, 0, -1, 2**63 - 1, 2**64 - 1, 2**70, -(2**70), 1.5, "text", "ünï", b"\x00\xff",
    [1, [2, 3]], {"a": {"b": [1]}}, {1: "int key"},
    dt.datetime(2012, 9, 27, 12, 30, 1, 123456), dt.datetime(2000, 1, 1),
    dt.datetime(2012, 1, 1, 3, tzinfo=dt.timezone(dt.timedelta(hours=2))),
    dt.date(2012, 9, 27), dt.time(1, 2, 3, 4), dt.timedelta(days=-1, seconds=5),
    uuid.UUID("12345678-1234-5678-1234-567812345678"), decimal.Decimal("1.10"),
    {1, 2, 3}, {"a", "b"}, frozenset({4}), (1, "a"), ((1, 2), [3, (4,)]), (),
    {"old": ({"id": 1}, {"id": 2})},
]


@pytest.mark.parametrize("value", SAMPLES, ids=repr)
def test_round_trip_is_exact(value):
    out = codec.unpackb(codec.packb(value))
    assert out == value
    assert type(out) is type(value)


def test_nested_types_survive_inside_containers():
    value = {"rows": [(dt.datetime(2012, 1, 1), {1, 2})], "t": ({"s": frozenset()},)}
    out = codec.unpackb(codec.packb(value))
    assert out == value
    assert isinstance(out["rows"][0], tuple) and isinstance(out["rows"][0][1], set)


def test_conditions_travel_as_values():
    c = constraint(vm_state=equal_any("deleted", "error"), task_state=not_equal(None))
    out = codec.unpackb(codec.packb({"constraint": c}))
    assert out["constraint"] == c
    assert out["constraint"].conditions["vm_state"].values == ["deleted", "error"]


class Color(enum.IntEnum):
    RED = 1


def test_int_subclasses_become_ints():
    assert codec.unpackb(codec.packb(Color.RED)) == 1


@pytest.mark.parametrize("value", [object(), lambda: 1, complex(1, 2)], ids=repr)
def test_unknown_types_are_refused_naming_the_type(value):
    with pytest.raises(TypeError, match=type(value).__name__):
        codec.packb({"nested": [value]})


@pytest.mark.parametrize("data", [
    b"\xc1", b"\x92\x01", b"\x81\xa1a", b"\xd4\x63\x00", b"\xc7\x03\x01abc", b"\x01\x02",
    b"\xc7\x02\x03ab",                      # a UUID of two bytes
    b"\xd4\x0a\x05",                        # a condition that is not a list
    b"\xc7\x03\x0a\x91\xa1x",               # an unknown condition kind
    b"\xc7\x02\x09\x91\x01",               # a timedelta of one field
    b"\x81\x91\x01\x02",                    # a list as a map key
    b"\x91" * 5000 + b"\xc0",               # nested past the stack limit
])
def test_garbage_raises_value_error(data):
    with pytest.raises(ValueError):
        codec.unpackb(data)


def test_size_limit():
    data = codec.packb("x" * 100)
    with pytest.raises(ValueError, match="exceeds"):
        codec.unpackb(data, max_size=50)
