"""Hypothesis strategies for what a stranger on the bus can publish to the topic queue.

Bodies: random bytes, random msgpack (extension types of any code included), and valid
requests mutated in their bytes (bit flips, truncation, splices) or their structure (a
field of the envelope, the context or the arguments swapped for a value of another type,
removed, nested deep, or replaced by an extension value), plus a few requests as large as
the conductor accepts built to cost the most to decode.  Properties: every basic
property, with the values the broker accepts and, published apart, those it refuses.
"""

from __future__ import annotations

import datetime as dt
import decimal
from dataclasses import dataclass, field
from typing import Any

import msgpack
from hypothesis import strategies as st

from schemas import codec, envelope
from schemas.context import RequestContext, get_admin_context

MAX_SIZE = 8 * 1024 * 1024  # conductor serve's default --max-message-size
VALID_REPLY_TO = "amq.rabbitmq.reply-to"
PREFIX = VALID_REPLY_TO + "."
# Shaped like a direct reply-to address: a node that does not exist, then a key that is
# malformed or one that is well-formed (only the broker can refuse that one).
FORGED_REPLY_TO = [PREFIX + "g2dkAA5yYWJiaXRAZmFrZQAAAAAAAAAAAAA=.AAAA",
                   PREFIX + "g2dkAA5yYWJiaXRAZmFrZQAAAAAAAAAAAAA=.a2tra2tra2tra2tra2tra2tr"
                   "a2s=", PREFIX, PREFIX + "x.y", "amq.rabbitmq.reply-to.#", "amq.direct"]
NOT_UTF8 = "\x00not-utf8"  # published as the bytes ff fe fd (see test_wire_fuzz.py)


@dataclass
class Fuzzed:
    """One message to publish: its body and its basic properties (pamqp's names)."""

    body: bytes
    properties: dict[str, Any] = field(default_factory=dict)
    kind: str = ""  # which strategy made the body, for a failure's message

    @property
    def broker_may_refuse(self) -> bool:
        """Published on a disposable channel: the broker closes a channel for these."""
        user = self.properties.get("user_id")
        expiration = self.properties.get("expiration")
        headers = self.properties.get("headers") or {}
        # CC and BCC must be arrays of strings (they route copies: sender-selected
        # distribution); a delivery mode is 1 or 2.
        return "CC" in headers or "BCC" in headers or \
            self.properties.get("delivery_mode", 1) not in (1, 2) or \
            (user is not None and user != "guest") or (
            expiration is not None and not _plain_expiration(expiration))

    @property
    def reply_expected(self) -> bool:
        """The conductor must answer it: an error reply is an answer."""
        p = self.properties
        return (p.get("reply_to") == VALID_REPLY_TO and p.get("expiration") is None
                and not self.broker_may_refuse and not _undecodable(p)
                and not _may_have_expired(self.body))


def _plain_expiration(value: str) -> bool:
    return value.isascii() and value.isdigit() and len(value) <= 9


def _undecodable(properties: dict[str, Any]) -> bool:
    return any(v == NOT_UTF8 for v in properties.values()) or \
        depth(properties.get("headers")) > 150


def depth(value: Any) -> int:
    """How deep lists and dicts nest in ``value`` (iteratively: it may be thousands)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (list, dict)):
            deepest = max(deepest, level + 1)
            stack.extend((v, level + 1) for v in
                         (item.values() if isinstance(item, dict) else item))
    return deepest


def _may_have_expired(body: bytes) -> bool:
    """A valid request whose caller gave up is dropped unanswered (it is logged)."""
    try:
        request = envelope.decode_request(body, max_size=MAX_SIZE)
    except Exception:
        return False
    # The conductor allows 5 s of clock skew; a batch of calls takes a few more.
    return (request.timeout is not None and request.timeout < 120) or \
        (request.deadline is not None and request.deadline < dt.datetime.now().timestamp()
         + 120)


# -- values of every msgpack type --------------------------------------------------------

# msgpack-python builds codes 0-127; the reserved negative ones go in raw (reserved_ext).
_EXT_CODES = st.sampled_from([0, *range(1, 13), 127]) | st.integers(0, 127)
_EXT_DATA = st.one_of(
    st.binary(max_size=40),
    st.sampled_from([b"", b"2012-09-27", b"2012-09-27T12:30:01", b"12:00", b"1e999",
                     b"NaN", b"9" * 81, b"1" * 16, msgpack.packb([]), msgpack.packb([1, 2]),
                     msgpack.packb([1, 2, 3]), msgpack.packb({"op": "eq"}),
                     msgpack.packb(["and", []]), b"\xff" * 12]))
EXTENSIONS = st.builds(msgpack.ExtType, _EXT_CODES, _EXT_DATA)
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.floats(),
    st.text(max_size=40), st.binary(max_size=40), EXTENSIONS,
    st.sampled_from(["", "0", "admin", "yes", "deleted", "only", "%", "'; DROP TABLE x;--",
                     "\x00", "é" * 100, "a" * 300, "1.0", "__batch__"]))
KEYS = st.one_of(st.text(max_size=20), st.integers(-5, 5), st.none(), st.booleans(),
                 st.binary(max_size=8))
VALUES = st.recursive(SCALARS, lambda children: st.one_of(
    st.lists(children, max_size=6), st.dictionaries(KEYS, children, max_size=6)),
    max_leaves=12)


def pack(value: Any) -> bytes:
    data: bytes = msgpack.packb(value, use_bin_type=True)
    return data


# -- valid requests, then mutated --------------------------------------------------------

_ADMIN = get_admin_context()
_USER = RequestContext("fuzz-user", "fuzz-project")
_CALLS: list[tuple[str, list[Any], dict[str, Any]]] = [
    ("service_get_all", [], {}),
    ("service_create", [{"host": "fuzz", "binary": "nova-compute", "topic": "compute"}], {}),
    ("instance_get_all_by_filters", [{"display_name": "fuzz", "deleted": False}], {}),
    ("instance_get_all_by_filters", [{"uuid": ["a", "b"]}], {"sort_key": "created_at"}),
    ("instance_create", [{"display_name": "fuzz", "metadata": {"k": "v"}}], {}),
    ("instance_get_by_uuid", ["00000000-0000-0000-0000-000000000000"], {}),
    ("s3_image_get", [1], {}),
    ("aggregate_metadata_add", [1, {"k": "v"}], {"set_delete": False}),
    ("quota_reserve", [{"instances": 1}, {"instances": 10}, {}, dt.timedelta(days=1), 0],
     {}),
    ("instance_destroy", ["00000000-0000-0000-0000-000000000000"], {}),
    ("bw_usage_update", ["uuid", "mac", 0, 1, 2, 3, 4], {}),
    ("fixed_ip_get_by_address", ["10.0.0.1"], {}),
    ("migration_get_in_progress_by_host_and_node", ["h", "n"], {}),
    ("block_device_mapping_update_or_create", [{"instance_uuid": "u",
                                                "device_name": "/dev/vda"}], {}),
]


def _template(index: int, admin: bool, batch: bool) -> dict[str, Any]:
    method, args, kwargs = _CALLS[index]
    context = (_ADMIN if admin else _USER).to_dict()
    if batch:
        calls = [envelope.Call(m, list(a), k, context) for m, a, k in _CALLS[:3]]
        request = envelope.Request(envelope.BATCH_METHOD, [], {}, context, calls=calls)
    else:
        request = envelope.Request(method, list(args), dict(kwargs), context,
                                   deadline=None, timeout=None)
    body: dict[str, Any] = request.to_dict()
    return body


TEMPLATES = st.builds(_template, st.integers(0, len(_CALLS) - 1), st.booleans(),
                      st.integers(0, 9).map(lambda n: n == 0))  # one in ten a batch
VALID_BODIES = TEMPLATES.map(codec.packb)


def _plain(body: dict[str, Any]) -> Any:
    """The request as msgpack would decode it: extension values stay ExtType."""
    return msgpack.unpackb(codec.packb(body), strict_map_key=False)


@st.composite
def structural_mutation(draw: st.DrawFn) -> bytes:
    body = _plain(draw(TEMPLATES))
    # Where: the envelope, the context, the arguments, a batch call.
    targets: list[tuple[Any, Any]] = [(body, k) for k in list(body)]
    targets += [(body["context"], k) for k in list(body["context"])]
    for container in (body.get("args"), body.get("kwargs")):
        if isinstance(container, list):
            targets += [(container, i) for i in range(len(container))]
        elif isinstance(container, dict):
            targets += [(container, k) for k in container]
    for arg in body.get("args") or []:
        if isinstance(arg, dict):
            targets += [(arg, k) for k in arg]
    for call in body.get("calls") or []:
        targets += [(call, k) for k in call]
    for _ in range(draw(st.integers(1, 3))):
        where, key = draw(st.sampled_from(targets))
        action = draw(st.sampled_from(["swap", "swap", "delete", "nest", "extension"]))
        if action == "delete" and isinstance(where, dict):
            where.pop(key, None)
            continue
        if action == "nest":
            value = draw(VALUES)
            as_list = draw(st.booleans())
            for _ in range(draw(st.integers(1, 200))):
                value = [value] if as_list else {"k": value}
        elif action == "extension":
            value = draw(EXTENSIONS)
        else:
            value = draw(VALUES)
        try:
            where[key] = value
        except (IndexError, KeyError):  # a key deleted by an earlier step
            pass
    if draw(st.booleans()):
        body[draw(KEYS)] = draw(VALUES)  # an unknown envelope field
    return pack(body)


@st.composite
def byte_mutation(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(VALID_BODIES))
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(["flip", "flip", "truncate", "splice", "insert",
                                       "duplicate", "byte"]))
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        if action == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif action == "byte":
            data[at] = draw(st.sampled_from([0xc1, 0xc0, 0xdd, 0xdf, 0xc9, 0xd4, 0xff, 0x90]))
        elif action == "truncate":
            del data[at:]
        elif action == "splice":
            other = draw(VALID_BODIES)
            start = draw(st.integers(0, len(other)))
            data[at:at + draw(st.integers(0, 50))] = other[start:start + 100]
        elif action == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=20))
        else:
            data[at:at] = data[at:at + draw(st.integers(1, 200))]
    return bytes(data)


def _nested_ext(code: int, depth: int) -> bytes:
    data = pack([])
    for _ in range(depth):
        data = pack(msgpack.ExtType(code, pack([data])) if code != codec.EXT_TUPLE else
                    msgpack.ExtType(code, data))
    return data


@st.composite
def deep_argument(draw: st.DrawFn) -> bytes:
    """A valid request whose one argument is nested deep, spliced in as raw msgpack."""
    depth = draw(st.integers(1, 3000))
    kind = draw(st.sampled_from(["array", "map", "tuple", "set", "mixed"]))
    if kind == "array":
        arg = b"\x91" * depth + b"\xc0"
    elif kind == "map":
        arg = b"\x81\xa1k" * depth + b"\xc0"
    elif kind == "mixed":
        arg = b"\x91\x81\xa1k" * (depth // 2) + b"\x90"
    else:
        code = codec.EXT_TUPLE if kind == "tuple" else codec.EXT_SET
        arg = _nested_ext(code, min(depth, 60))
    head = codec.packb({"v": "1.0", "method": draw(st.sampled_from(
        ["s3_image_get", "instance_get_all_by_filters", "service_create"])),
        "kwargs": {}, "context": _ADMIN.to_dict()})
    assert head[0] == 0x84
    return bytes([0x85]) + head[1:] + pack("args") + b"\x91" + arg


@st.composite
def reserved_ext(draw: st.DrawFn) -> bytes:
    """A request whose argument is an extension value of a reserved (negative) code:
    -1 is msgpack's timestamp, decoded by msgpack itself, not the codec's hook."""
    code = draw(st.sampled_from([-1, -1, -2, -128]) | st.integers(-128, -1))
    data = draw(st.sampled_from([b"\x00" * 4, b"\xff" * 4, b"\x00" * 8, b"\xff" * 8,
                                 b"\x00" * 12, b"\xff" * 12]) | st.binary(max_size=20))
    arg = b"\xc7" + bytes([len(data), code & 0xFF]) + data
    head = codec.packb({"v": "1.0", "method": draw(st.sampled_from(
        ["s3_image_get", "instance_get_by_uuid", "service_create"])), "kwargs": {},
        "context": _ADMIN.to_dict()})
    return bytes([0x85]) + head[1:] + pack("args") + b"\x91" + arg


def _costly(shape: str, size: int) -> bytes:
    """As many cheap-to-send, costly-to-decode items as ``size`` bytes hold."""
    unit = {"empty-arrays": b"\x90", "empty-maps": b"\x80", "nils": b"\xc0",
            "empty-sets": b"\xd4\x05\x90", "empty-tuples": b"\xd4\x06\x90",
            "decimals": b"\xd4\x04\x31", "timedeltas": b"\xd6\x09\x93\x00\x00\x00",
            "uuids": b"\xd8\x03" + b"u" * 16, "repeated-keys": b"\x00\x00"}[shape]
    count = (size - 200) // len(unit)
    if shape == "repeated-keys":
        inner = b"\xdf" + count.to_bytes(4, "big") + unit * count
    else:
        per = 100_000
        chunk = b"\xdd" + per.to_bytes(4, "big") + unit * per
        chunks = max(count // per, 1)
        inner = b"\xdd" + chunks.to_bytes(4, "big") + chunk * chunks
    head = codec.packb({"v": "1.0", "method": "s3_image_get", "kwargs": {},
                        "context": _ADMIN.to_dict()})
    return bytes([0x85]) + head[1:] + pack("args") + b"\x91" + inner


LARGE_BODIES = st.builds(
    _costly, st.sampled_from(["empty-arrays", "empty-maps", "nils", "empty-sets",
                              "empty-tuples", "decimals", "timedeltas", "uuids",
                              "repeated-keys"]),
    st.sampled_from([MAX_SIZE, MAX_SIZE // 2, MAX_SIZE + 1000]))

BODIES = st.one_of(
    st.tuples(st.just("random-bytes"), st.binary(max_size=300)),
    st.tuples(st.just("random-msgpack"), VALUES.map(pack)),
    st.tuples(st.just("random-map"), st.dictionaries(KEYS, VALUES, max_size=10).map(pack)),
    st.tuples(st.just("valid"), VALID_BODIES),
    st.tuples(st.just("structure"), structural_mutation()),
    st.tuples(st.just("structure"), structural_mutation()),
    st.tuples(st.just("bytes"), byte_mutation()),
    st.tuples(st.just("bytes"), byte_mutation()),
    st.tuples(st.just("deep"), deep_argument()),
    st.tuples(st.just("reserved-ext"), reserved_ext()),
)


# -- AMQP basic properties ---------------------------------------------------------------

def _short(max_size: int = 60) -> st.SearchStrategy[str]:
    """A shortstr: at most 255 bytes of UTF-8 on the wire."""
    return st.text(max_size=max_size).filter(lambda s: len(s.encode()) <= 255) | \
        st.sampled_from(["", "x" * 255, "é" * 127, NOT_UTF8])


_HEADER_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1),
    # Not infinite: RabbitMQ 3.10 closes the publishing connection (541 INTERNAL_ERROR)
    # for an infinite float in a header, before anything reaches a queue.
    st.floats(width=32, allow_nan=False, allow_infinity=False), st.text(max_size=50),
    st.binary(max_size=50).map(bytearray),
    st.decimals(allow_nan=False, allow_infinity=False, places=2, min_value=-10**6,
                max_value=10**6),
    st.datetimes(min_value=dt.datetime(1970, 1, 1), max_value=dt.datetime(9999, 1, 1)),
    # pamqp writes a table as one frame: the whole header stays under frame_max (128 kB).
    st.sampled_from(["x" * 2_000, bytearray(2_000), 2**63 - 1, -(2**63),
                     decimal.Decimal("1.5"), "x-delivery-count", "delivery_limit"]))
_HEADER_KEYS = st.text(min_size=1, max_size=30).filter(lambda s: len(s.encode()) <= 128) | \
    st.sampled_from(["x-delivery-count", "x-death", "x-first-death-reason",
                     "x-conductor-undecodable-properties", "x-match", "CC", "BCC",
                     "x-filler"])
HEADER_VALUES = st.recursive(_HEADER_SCALARS, lambda children: st.one_of(
    st.lists(children, max_size=4), st.dictionaries(_HEADER_KEYS, children, max_size=4)),
    max_leaves=8)


@st.composite
def nested_table(draw: st.DrawFn) -> Any:
    value: Any = draw(_HEADER_SCALARS)
    as_list = draw(st.booleans())
    # Past ~300 levels pamqp's recursive decoder gives up: the conductor drops the message.
    for _ in range(draw(st.integers(1, 150) | st.sampled_from([400, 1000, 3000]))):
        value = [value] if as_list else {"n": value}
    return value


HEADERS = st.none() | st.dictionaries(
    _HEADER_KEYS, HEADER_VALUES, max_size=4) | st.dictionaries(
    _HEADER_KEYS, nested_table(), max_size=2) | st.builds(
    lambda n: {f"h{i}": i for i in range(n)}, st.integers(100, 2000))

_TIMESTAMPS = st.none() | st.sampled_from([0, 1, 2**31, 2**32, 2**63 - 1, 2**64 - 1]) | \
    st.integers(0, 2**64 - 1)


@st.composite
def properties(draw: st.DrawFn) -> dict[str, Any]:
    def one_in(n: int, strategy: st.SearchStrategy[Any]) -> Any:
        # Hypothesis favours the ends of a range: the middle value sets the rate.
        return draw(strategy) if draw(st.integers(0, n - 1)) == n // 2 else None

    p: dict[str, Any] = {
        "content_type": draw(st.sampled_from([envelope.CONTENT_TYPE, None]) | _short()),
        "content_encoding": one_in(2, st.sampled_from(["gzip", "binary"]) | _short()),
        "headers": draw(HEADERS),
        # The broker refuses a mode other than 1 or 2 (and closes the channel).
        "delivery_mode": one_in(20, st.integers(0, 255)) or draw(
            st.sampled_from([None, 1, 2])),
        "priority": one_in(2, st.integers(0, 255)),
        "reply_to": one_in(3, st.sampled_from([None, *FORGED_REPLY_TO]) | _short())
        or VALID_REPLY_TO,
        "expiration": one_in(12, st.sampled_from(
            ["0", "1", "60000", "4294967295", "99999999999999999999", "-1", "", "abc",
             "1.5", " 1", "1e3", NOT_UTF8]) | st.integers(0, 10**12).map(str)),
        "message_id": one_in(2, _short(100) | st.just("fuzz-duplicate")),
        "timestamp": draw(_TIMESTAMPS),
        "message_type": one_in(2, st.sampled_from([c[0] for c in _CALLS]) | _short()),
        "user_id": one_in(8, st.sampled_from(["guest", "admin", ""])),
        "app_id": one_in(2, _short()),
    }
    return {k: v for k, v in p.items() if v is not None}


MESSAGES = st.builds(lambda body, props: Fuzzed(body[1], props, body[0]), BODIES,
                     properties())
