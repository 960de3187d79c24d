"""Decoding of AMQP properties that a stranger's message cannot turn into a lost connection.

Any publisher on the bus sets the properties of the messages the conductor consumes, and
aiormq drops the whole connection when pamqp cannot decode a content header
(``InvalidFrameError``): the unacked messages come back, and the one at fault does the same
to the next connection, until the broker's delivery limit sets it aside, every cycle
costing every caller a reconnect.  Two patches, installed once by :mod:`conductor.broker`:

- ``timestamp = 2**64 - 1`` (any timestamp past year 9999): pamqp's
  ``datetime.fromtimestamp`` raises "year 584556019 is out of range".  Known upstream and
  open: https://github.com/mosquito/aiormq/issues/186 (the decode is pamqp's).  pika fixed
  the same loop in its own decoder by falling back to the raw value; aio-pika accepts only a
  datetime or None for ``IncomingMessage.timestamp``, so here it decodes as None.  The
  conductor never reads the timestamp: the message is served as usual.
- anything else that cannot be decoded (a short string that is not UTF-8, a field table of
  unknown types, a table nested deeper than Python's recursion limit, ...): the message is
  delivered with no properties but the header :data:`UNDECODABLE`, whose value only this
  module makes (:func:`undecodable`), and the server drops it with a log line.  The
  frame's length fields are still required to parse: a truncated frame is a framing error
  and stays one.
"""

from __future__ import annotations

import datetime

from pamqp import commands, decode, header

UNDECODABLE = "x-conductor-undecodable-properties"


class _Reason(str):
    """Why the properties could not be decoded.  A header a publisher sets under the same
    name decodes as a plain str: it is not believed, and the message is served."""


def undecodable(headers: dict[str, object] | None) -> str | None:
    """The reason a message's properties could not be decoded, or None if they were."""
    reason = (headers or {}).get(UNDECODABLE)
    return reason if isinstance(reason, _Reason) else None

_timestamp = decode.timestamp
_unmarshal = header.ContentHeader.unmarshal


def _lenient_timestamp(value: bytes) -> tuple[int, datetime.datetime | None]:
    try:
        return _timestamp(value)
    except (ValueError, OverflowError, OSError):
        if len(value) < 8:
            raise  # truncated, not an odd value
        return 8, None


def _lenient_unmarshal(self: header.ContentHeader, data: bytes) -> None:
    try:
        _unmarshal(self, data)
    except (ValueError, OverflowError, TypeError, RecursionError) as exc:
        # RecursionError: pamqp decodes nested tables recursively, and RabbitMQ relays a
        # table a few thousand levels deep; uncaught, it took down the consuming
        # connection at every delivery.
        if len(data) < 12:
            raise
        # class id, weight and body size came first and parsed: the body frames that
        # follow are still read, so the stream stays in step.
        reason = _Reason(f"{type(exc).__name__}: {exc}"[:200])
        self.properties = commands.Basic.Properties(headers={UNDECODABLE: reason})


def install() -> None:
    """Idempotent."""
    decode.METHODS["timestamp"] = _lenient_timestamp  # type: ignore[assignment]
    decode.TABLE_MAPPING[b"T"] = _lenient_timestamp  # type: ignore[assignment]
    header.ContentHeader.unmarshal = _lenient_unmarshal  # type: ignore[method-assign]
