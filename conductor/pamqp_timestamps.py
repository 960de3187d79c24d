"""Decode an AMQP timestamp that no ``datetime`` can hold as absent instead of failing.

Any publisher on the bus can set ``timestamp = 2**64 - 1`` in a message's properties.
pamqp decodes it with ``datetime.fromtimestamp``, which raises ("year 584556019 is out of
range"); aiormq then drops the whole connection (``InvalidFrameError``), the unacked
message comes back and does the same to the next connection, forever.  Known upstream:
https://github.com/mosquito/aiormq/issues/186 (the decode is pamqp's).  pika fixed the same
loop in its own decoder by falling back to the raw value; aio-pika accepts only a datetime
or None for ``IncomingMessage.timestamp``, so here the fallback is None.  The conductor
never reads the timestamp; only the frame must survive.
"""

from __future__ import annotations

import datetime

from pamqp import decode

_original = decode.timestamp


def _timestamp(value: bytes) -> tuple[int, datetime.datetime | None]:
    try:
        return _original(value)
    except (ValueError, OverflowError, OSError):
        if len(value) < 8:
            raise  # truncated: a framing error, not an odd value
        return 8, None


def install() -> None:
    """Idempotent: property lists and field tables both use the patched decoder."""
    decode.METHODS["timestamp"] = _timestamp  # type: ignore[assignment]
    decode.TABLE_MAPPING[b"T"] = _timestamp  # type: ignore[assignment]
