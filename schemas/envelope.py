"""Request and reply envelopes: their shape, and the checks both sides apply.

Request: ``{"v", "method", "args", "kwargs", "context", "deadline"}``; a batch (job queue)
is ``{"v", "method": BATCH_METHOD, "calls": [{"method", "args", "kwargs"}, ...],
"context", "deadline"}``.  Reply: ``{"result": ...}`` or ``{"error": {"class", "message",
"kwargs"}}``.  ``deadline`` is the caller's absolute give-up time (epoch seconds) or None.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from schemas import codec
from schemas.catalog import PROTOCOL_VERSION, SUPPORTED_VERSIONS

CONTENT_TYPE = "application/msgpack"
BATCH_METHOD = "__batch__"
DEFAULT_MAX_BATCH = 1000


class EnvelopeError(ValueError):
    """The bytes are not a valid request or reply."""


@dataclass
class Call:
    method: str
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Request:
    method: str
    args: list[Any]
    kwargs: dict[str, Any]
    context: dict[str, Any]
    version: str = PROTOCOL_VERSION
    deadline: float | None = None
    calls: list[Call] | None = None  # only for a batch

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"v": self.version, "method": self.method,
                                "context": self.context, "deadline": self.deadline}
        if self.calls is not None:
            body["calls"] = [{"method": c.method, "args": c.args, "kwargs": c.kwargs}
                             for c in self.calls]
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
    return Call(method, args, kwargs)


def decode_request(data: bytes, *, max_size: int = 0,
                   max_batch: int = DEFAULT_MAX_BATCH) -> Request:
    """Decode and validate a request; raises EnvelopeError saying what is wrong."""
    try:
        body = codec.unpackb(data, max_size=max_size)
    except ValueError as exc:
        raise EnvelopeError(str(exc)) from exc
    if not isinstance(body, dict):
        raise EnvelopeError("a request must be a map")
    version = body.get("v")
    if version not in SUPPORTED_VERSIONS:
        raise EnvelopeError(f"unsupported protocol version {version!r}; this conductor "
                            f"speaks {', '.join(SUPPORTED_VERSIONS)}")
    context = body.get("context")
    if not isinstance(context, dict):
        raise EnvelopeError("'context' must be a map")
    deadline = body.get("deadline")
    if deadline is not None and (isinstance(deadline, bool)
                                 or not isinstance(deadline, (int, float))):
        raise EnvelopeError("'deadline' must be a number or nil")
    call = _check_call(body, "request")
    calls = None
    if call.method == BATCH_METHOD:
        raw = body.get("calls")
        if not isinstance(raw, list) or not raw:
            raise EnvelopeError("a batch needs a non-empty 'calls' array")
        if len(raw) > max_batch:
            raise EnvelopeError(f"a batch holds at most {max_batch} calls, not {len(raw)}")
        calls = [_check_call(c, f"batch call {i}") for i, c in enumerate(raw)]
    return Request(call.method, call.args, call.kwargs, context, version,
                   float(deadline) if deadline is not None else None, calls)


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
