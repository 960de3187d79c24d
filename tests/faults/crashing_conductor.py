"""A conductor that dies like a killed process on a chosen method.

Run as ``python -m tests.faults.crashing_conductor serve ...`` with CRASH_ON_METHOD set (the
AMQP ``type`` property of the messages to die on).  CRASH_AT says when:

- ``reply`` (default): after the call has committed and before its reply or ack;
- ``arrival``: as the message arrives, before any of the conductor's code has looked at
  it (as a segfault in decoding would).

Either way the process exits with os._exit (no cleanup, no ack), as kill -9 would leave it.
"""

import os
import sys

from conductor import server
from conductor.cli import main

METHOD = os.environ["CRASH_ON_METHOD"]
AT = os.environ.get("CRASH_AT", "reply")
_reply = server.Server._reply
_on_message = server.Server._on_message


async def _crash_before_reply(self, message, reply, node):  # type: ignore[no-untyped-def]
    if message.type == METHOD:
        os._exit(137)
    await _reply(self, message, reply, node)


async def _crash_on_arrival(self, message):  # type: ignore[no-untyped-def]
    if message.type == METHOD:
        os._exit(137)
    await _on_message(self, message)


if AT == "arrival":
    server.Server._on_message = _crash_on_arrival  # type: ignore[method-assign]
else:
    server.Server._reply = _crash_before_reply  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.exit(main())
