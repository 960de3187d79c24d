"""Request and reply envelopes: their shape, and the checks both sides apply.

Request: ``{"v", "method", "args", "kwargs", "context", "deadline", "timeout", "attempt"}``;
a batch (job queue) is ``{"v", "method": BATCH_METHOD, "calls": [{"method", "args",
"kwargs", "context"}, ...], "context", ...}`` (a call without its own context uses the
batch's).  Reply: ``{"result": ...}`` or ``{"error": {"class",
"message", "kwargs"}}``.  ``deadline`` is the caller's absolute give-up time (epoch
seconds), ``timeout`` the same as a duration (for a receiver whose clock is skewed), and
``attempt`` counts the caller's sends of this message id (a retry is attempt 2 or more).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from schemas import codec, exceptions
from schemas.catalog import PROTOCOL_VERSION, SUPPORTED_VERSIONS

CONTENT_TYPE = "application/msgpack"
_VERSION = re.compile(r"\d{1,4}\.\d{1,4}")
BATCH_METHOD = "__batch__"
DEFAULT_MAX_BATCH = 1000


class EnvelopeError(ValueError):
    """The bytes are not a valid request or reply."""


@dataclass
class Call:
    method: str
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] | None = None


@dataclass
class Request:
    method: str
    args: list[Any]
    kwargs: dict[str, Any]
    context: dict[str, Any]
    version: str = PROTOCOL_VERSION
    deadline: float | None = None
    calls: list[Call] | None = None  # only for a batch
    timeout: float | None = None
    attempt: int = 1

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"v": self.version, "method": self.method,
                                "context": self.context, "deadline": self.deadline,
                                "timeout": self.timeout, "attempt": self.attempt}
        if self.calls is not None:
            body["calls"] = [{"method": c.method, "args": c.args, "kwargs": c.kwargs,
                              "context": c.context} for c in self.calls]
        else:
            body["args"] = self.args
            body["kwargs"] = self.kwargs
        return body

    def encode(self) -> bytes:
        return codec.packb(self.to_dict())


def _check_call(body: Any, where: str) -> Call:
    if not isinstance(body, dict):
        raise EnvelopeError(f"{where} must be a map")
    method = body.get("method")
    if not isinstance(method, str) or not method:
        raise EnvelopeError(f"{where}: 'method' must be a non-empty string")
    args = body.get("args", [])
    if isinstance(args, tuple):
        args = list(args)
    if not isinstance(args, list):
        raise EnvelopeError(f"{where}: 'args' must be an array")
    kwargs = body.get("kwargs", {})
    if not isinstance(kwargs, dict) or not all(isinstance(k, str) for k in kwargs):
        raise EnvelopeError(f"{where}: 'kwargs' must be a map with string keys")
    context = body.get("context")
    if context is not None and not isinstance(context, dict):
        raise EnvelopeError(f"{where}: 'context' must be a map")
    return Call(method, args, kwargs, context)


def decode_request(data: bytes, *, max_size: int = 0,
                   max_batch: int = DEFAULT_MAX_BATCH) -> Request:
    """Decode and validate a request; raises EnvelopeError saying what is wrong."""
    try:
        body = codec.unpackb(data, max_size=max_size, request=True)
    except ValueError as exc:
        raise EnvelopeError(str(exc)) from exc
    if not isinstance(body, dict):
        raise EnvelopeError("a request must be a map")
    version = body.get("v")
    if version not in SUPPORTED_VERSIONS:
        if isinstance(version, str) and _VERSION.fullmatch(version):
            # A well-formed version this conductor does not know: a newer caller (or a
            # newer function) during a rolling upgrade; conductors are upgraded first.
            method = body.get("method")
            raise exceptions.UnsupportedVersion(
                method=method[:80] if isinstance(method, str) else "?", version=version,
                supported=", ".join(SUPPORTED_VERSIONS))
        raise EnvelopeError(f"unsupported protocol version {repr(version)[:40]}; this conductor "
                            f"speaks {', '.join(SUPPORTED_VERSIONS)}")
    context = body.get("context")
    if not isinstance(context, dict):
        raise EnvelopeError("'context' must be a map")
    deadline = _number(body, "deadline")
    timeout = _number(body, "timeout")
    attempt = body.get("attempt", 1)
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
        raise EnvelopeError("'attempt' must be a positive integer")
    call = _check_call(body, "request")
    calls = None
    if call.method == BATCH_METHOD:
        raw = body.get("calls")
        if not isinstance(raw, list) or not raw:
            raise EnvelopeError("a batch needs a non-empty 'calls' array")
        if len(raw) > max_batch:
            raise EnvelopeError(f"a batch holds at most {max_batch} calls, not {len(raw)}")
        calls = [_check_call(c, f"batch call {i}") for i, c in enumerate(raw)]
    return Request(call.method, call.args, call.kwargs, context, version, deadline, calls,
                   timeout, attempt)


def _number(body: dict[str, Any], key: str) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise EnvelopeError(f"'{key}' must be a number or nil")
    return float(value)


def encode_result(result: Any) -> bytes:
    return codec.packb({"result": result})


def encode_error(error: dict[str, Any]) -> bytes:
    return codec.packb({"error": error})


def decode_reply(data: bytes) -> tuple[bool, Any]:
    """Return ``(True, result)`` or ``(False, error dict)``."""
    try:
        body = codec.unpackb(data)
    except ValueError as exc:
        raise EnvelopeError(str(exc)) from exc
    if isinstance(body, dict):
        if "result" in body:
            return True, body["result"]
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("class"), str):
            return False, error
    raise EnvelopeError("a reply must be {'result': ...} or {'error': {...}}")
