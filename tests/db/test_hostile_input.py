"""Junk arguments for every implemented function: an error reply, never a crash.

A caller on a shared bus can send anything the codec carries. Every handler must answer
with a result or one of Nova's exceptions; a ``RemoteError`` means an exception escaped
a handler (a TypeError, ...), and a ``DBError`` other than a constraint violation (which
api-compute.md §1.4 says surfaces as DBError) means a bad value reached the driver.
"""

import datetime as dt
import uuid

import pytest

from conductor.dispatch import Delivery, Dispatcher
from conductor.handlers import DECLARED_ONLY
from schemas import catalog, codec, envelope
from schemas.context import RequestContext, get_admin_context

JUNK = [None, "", "x" * 300, "nul\x00", -1, 0, 2**31, 2**70, 1.5, float("nan"), True,
        {"a": {"b": 1}}, [1, "2", None], (1, 2), {1, 2}, b"\xff\xfe",
        dt.datetime(1900, 1, 1), uuid.UUID(int=0)]
CONTEXTS = [get_admin_context(), RequestContext("u", "p")]


def _constraint_violation(message: str) -> bool:
    text = message.lower()
    return any(marker in text for marker in ("not-null constraint", "not null constraint",
                                             "unique constraint", "duplicate key",
                                             "foreign key constraint"))


def _calls(handlers):
    for func in catalog.remote_functions():
        if func.name not in handlers:
            continue
        names = [p.name for p in func.params[1:] if p.name != "session"]
        for junk in JUNK:
            yield func, {name: junk for name in names}


async def test_junk_arguments_never_escape_as_remote_errors(_db_backend, handlers):
    from tests.conftest import _wipe

    await _wipe(_db_backend)
    dispatcher = Dispatcher(_db_backend)
    escaped = []
    for func, kwargs in _calls(handlers):
        for context in CONTEXTS:
            body = envelope.Request(func.name, [], kwargs, context.to_dict(),
                                    timeout=30).encode()
            outcome = await dispatcher.handle(body, Delivery(message_id=uuid.uuid4().hex))
            ok, value = envelope.decode_reply(outcome.reply)
            if func.name in DECLARED_ONLY:
                assert not ok
                if value["class"] == "RemoteError":
                    assert value["kwargs"]["exc_type"] == "NotImplementedError"
                continue
            if not ok and (value["class"] == "RemoteError" or value["class"] == "DBError"
                           and not _constraint_violation(value["message"])):
                escaped.append(f"{func.name}({kwargs!r:.80}) -> {value['class']}: "
                               f"{value['message'][:160]}")
    assert not escaped, f"{len(escaped)} calls escaped:\n" + "\n".join(escaped[:40])


@pytest.mark.parametrize("body", [
    codec.packb({"v": "1.0", "method": "service_get", "args": [], "kwargs": {},
                 "context": {"roles": 5}}),
    codec.packb({"v": "1.0", "method": "service_get", "args": [], "kwargs": {},
                 "context": {"read_deleted": None}}),
    codec.packb({"v": "1.0", "method": "service_get", "args": [1], "kwargs": {"x": 1},
                 "context": {}}),
    codec.packb({"v": "1.0", "method": "service_get", "args": [1], "kwargs": {},
                 "context": {}, "attempt": 0}),
])
async def test_malformed_envelopes_are_invalid_requests(_db_backend, body):
    outcome = await Dispatcher(_db_backend).handle(body, Delivery(message_id="m"))
    ok, value = envelope.decode_reply(outcome.reply)
    assert not ok and value["class"] == "InvalidRequest"
