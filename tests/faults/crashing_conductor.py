"""A conductor that dies like a killed process right after committing a chosen method.

Run as ``python -m tests.faults.crashing_conductor serve ...`` with CRASH_ON_METHOD set:
when a call of that method has committed and before its reply or ack, the process exits
with os._exit (no cleanup, no ack), as kill -9 would leave it.
"""

import os
import sys

from conductor import server
from conductor.cli import main

METHOD = os.environ["CRASH_ON_METHOD"]
_reply = server.Server._reply


async def _crash_before_reply(self, message, reply):  # type: ignore[no-untyped-def]
    if message.type == METHOD:
        os._exit(137)
    await _reply(self, message, reply)


server.Server._reply = _crash_before_reply  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.exit(main())
