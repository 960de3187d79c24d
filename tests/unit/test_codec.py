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


# --- hostile input: decoding is bounded before anything converts it -------------------

def _nest(code: int, depth: int) -> bytes:
    import msgpack

    data = msgpack.packb([])
    for _ in range(depth):
        inner = msgpack.ExtType(code, data)
        # a timedelta or condition level still has to look like one to reach the next
        data = msgpack.packb([inner] if code in (codec.EXT_TIMEDELTA, codec.EXT_CONDITION)
                             else inner)
    return data


@pytest.mark.parametrize("code", [codec.EXT_SET, codec.EXT_TUPLE, codec.EXT_FROZENSET,
                                  codec.EXT_TIMEDELTA, codec.EXT_CONDITION])
def test_deeply_nested_extensions_are_refused_not_a_crash(code):
    # In a child process: a regression here kills the interpreter (SIGSEGV), not a test.
    import subprocess
    import sys

    script = ("import sys; from schemas import codec\n"
              "try:\n    codec.unpackb(sys.stdin.buffer.read())\n"
              "except ValueError as exc:\n    print(exc)\n")
    done = subprocess.run([sys.executable, "-c", script], input=_nest(code, 300),
                          capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()[-500:]
    assert b"undecodable message" in done.stdout


def test_extension_nesting_shares_one_budget_across_levels():
    within = (((((1,),),),),)
    assert codec.unpackb(codec.packb(within)) == within
    value: object = ()
    for _ in range(codec.MAX_EXT_DEPTH + 1):
        value = (value,)
    with pytest.raises(ValueError, match="nested deeper"):
        codec.unpackb(codec.packb(value))


def _ext(code: int, data: bytes) -> bytes:
    import msgpack

    return msgpack.packb(msgpack.ExtType(code, data))


@pytest.mark.parametrize("text", ["1e1000000", "1e-1000000", "0E-999999", "NaN", "sNaN",
                                  "Infinity", "1" * 101])
def test_decimals_beyond_the_bounds_are_refused(text):
    with pytest.raises(ValueError, match="decimal"):
        codec.unpackb(_ext(codec.EXT_DECIMAL, text.encode()))


def test_decimals_within_the_bounds_decode():
    assert codec.unpackb(_ext(codec.EXT_DECIMAL, b"-12.5e3")) == decimal.Decimal("-12.5e3")


@pytest.mark.parametrize("text", ["9" * 81, "1_000", " 12", "0x10", ""])
def test_big_integers_beyond_the_bounds_or_not_digits_are_refused(text):
    with pytest.raises(ValueError, match="big integer"):
        codec.unpackb(_ext(codec.EXT_BIGINT, text.encode()))


@pytest.mark.parametrize("code", [codec.EXT_DATETIME, codec.EXT_DATE, codec.EXT_TIME])
def test_date_strings_are_bounded_in_length(code):
    with pytest.raises(ValueError, match="exceeds the limit"):
        codec.unpackb(_ext(code, b"2012-01-01" + b" " * 100))


def test_timedelta_parts_must_be_integers():
    with pytest.raises(ValueError, match="timedelta"):
        codec.unpackb(_ext(codec.EXT_TIMEDELTA, codec.packb([1.5, 0, 0])))


# --- a request's decoding is bounded in values, not only in bytes -----------------------

def _array(count: int, item: bytes) -> bytes:
    return b"\xdd" + count.to_bytes(4, "big") + item * count


@pytest.mark.parametrize(("data", "expected"), [
    # One container too long: refused from its header, before any of it is built.
    (_array(codec.MAX_REQUEST_VALUES + 1, b"\xc0"), "exceeds max_array_len"),
    (b"\xdf" + (codec.MAX_REQUEST_VALUES // 2 + 1).to_bytes(4, "big")
     + b"\x00\x00" * (codec.MAX_REQUEST_VALUES // 2 + 1), "exceeds max_map_len"),
    # Many small containers, each within the cap: stopped by the running count.
    (_array(200, _array(2000, b"\x90")), "too many values"),
    (_array(200, _array(2000, b"\x80")), "too many values"),
    # A map repeating one key costs every entry: counted on the wire, not in the dict.
    (_array(4, b"\xdf" + (100_000).to_bytes(4, "big") + b"\x00\x00" * 100_000),
     "too many values"),
    # Containers inside extension values draw on the same budget.
    (_array(40_000, _ext(codec.EXT_TUPLE, b"\x96" + b"\x90" * 6)), "too many values"),
    (_array(codec.MAX_REQUEST_EXTENSIONS + 1, _ext(codec.EXT_UUID, b"u" * 16)),
     "too many extension values"),
], ids=["one-huge-array", "one-huge-map", "many-arrays", "many-maps", "repeated-keys",
        "arrays-in-tuples", "uuids"])
def test_a_request_with_too_many_values_is_refused(data, expected):
    with pytest.raises(ValueError, match=expected):
        codec.unpackb(data, request=True)
    codec.unpackb(data)  # a reply is the conductor's own: not held to the request budget


def test_the_largest_real_requests_fit_the_budget():
    context = {"user_id": "u", "project_id": "p", "roles": ["admin", "member"],
               "request_id": "req-" + "0" * 36, "is_admin": True, "read_deleted": "no",
               "timestamp": dt.datetime(2012, 9, 27), "remote_address": "10.0.0.1"}
    values = {"display_name": "x", "metadata": {f"k{i}": f"v{i}" for i in range(20)},
              "launched_at": dt.datetime(2012, 9, 27), "vm_state": "building"}
    batch = [{"method": "instance_create", "args": [values], "kwargs": {},
              "context": context} for _ in range(1000)]
    uuids = [str(uuid.uuid4()) for _ in range(10_000)] + [uuid.uuid4() for _ in range(10_000)]
    for request in ({"calls": batch, "context": context},
                    {"args": [{"uuid": uuids, "deleted": False}], "context": context}):
        assert codec.unpackb(codec.packb(request), request=True) == request
