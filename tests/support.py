"""Test helpers: an in-process client that goes through the dispatcher, not the broker."""

from __future__ import annotations

import inspect
import time
import uuid
from typing import Any

from client import _methods
from client.core import AsyncJobQueue
from conductor.dispatch import Delivery, Dispatcher
from schemas import catalog, envelope, exceptions
from schemas.conditions import constraint, equal_any, not_equal
from schemas.context import RequestContext


class LocalClient:
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
        func = catalog.BY_NAME[method]
        return await self._send(func, func.signature.bind(context, *args, **kwargs))

    def _invoke(self, func: catalog.Function, bound: inspect.BoundArguments) -> Any:
        return self._send(func, bound)

    async def _send(self, func: catalog.Function, bound: inspect.BoundArguments) -> Any:
        context = bound.arguments["context"]
        body = envelope.Request(func.name, list(bound.args[1:]), dict(bound.kwargs),
                                context.to_dict(), deadline=time.time() + 60,
                                timeout=60).encode()
        return await self._roundtrip(body)

    async def _send_batch(self, calls: list[tuple[catalog.Function, inspect.BoundArguments]]
                          ) -> Any:
        queued = [envelope.Call(f.name, list(b.args[1:]), dict(b.kwargs),
                                b.arguments["context"].to_dict()) for f, b in calls]
        body = envelope.Request(envelope.BATCH_METHOD, [], {}, queued[0].context or {},
                                calls=queued, timeout=60).encode()
        return await self._roundtrip(body)

    def job_queue(self, max_calls: int = envelope.DEFAULT_MAX_BATCH) -> AsyncJobQueue:
        return AsyncJobQueue(self, max_calls)  # type: ignore[arg-type]

    async def _roundtrip(self, body: bytes) -> Any:
        outcome = await self.dispatcher.handle(body, Delivery(message_id=uuid.uuid4().hex))
        assert outcome.reply is not None
        ok, value = envelope.decode_reply(outcome.reply)
        if ok:
            return value
        raise exceptions.from_wire(value)


_methods.install(LocalClient, LocalClient._invoke)
