"""Test helpers: an in-process client that goes through the dispatcher, not the broker."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import Any

from client._api import AsyncAPI
from client.core import AsyncJobQueue
from client.jobs import QueuedCall, bind
from conductor.dispatch import Delivery, Dispatcher
from schemas import envelope, exceptions
from schemas.conditions import constraint, equal_any, not_equal
from schemas.context import RequestContext


class LocalClient(AsyncAPI):
    """The client's methods, run by a Dispatcher in this process.

    The request and the reply still go through the codec and the envelope, so what a
    test sees is what a remote caller would see.
    """

    constraint = staticmethod(constraint)
    equal_any = staticmethod(equal_any)
    not_equal = staticmethod(not_equal)

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher

    async def call(self, method: str, context: RequestContext, *args: Any,
                   **kwargs: Any) -> Any:
        call = bind(method, context, args, kwargs, None)
        body = envelope.Request(method, list(call.args), call.kwargs, context.to_dict(),
                                deadline=time.time() + 60, timeout=60).encode()
        return await self._roundtrip(body)

    async def send_batch(self, calls: Sequence[QueuedCall]) -> Any:
        queued = [envelope.Call(c.function.name, list(c.args), c.kwargs, c.context.to_dict())
                  for c in calls]
        body = envelope.Request(envelope.BATCH_METHOD, [], {}, queued[0].context or {},
                                calls=queued, timeout=60).encode()
        return await self._roundtrip(body)

    def job_queue(self, max_calls: int = envelope.DEFAULT_MAX_BATCH) -> AsyncJobQueue:
        return AsyncJobQueue(self, max_calls)

    async def _roundtrip(self, body: bytes) -> Any:
        outcome = await self.dispatcher.handle(body, Delivery(message_id=uuid.uuid4().hex))
        assert outcome.reply is not None
        ok, value = envelope.decode_reply(outcome.reply)
        if ok:
            return value
        raise exceptions.from_wire(value)

