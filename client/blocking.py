"""The blocking client: the async client on a private event loop thread."""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from client import _methods
from client.core import DEFAULT_URL, ConductorClient
from client.jobs import JobQueue
from schemas import catalog, envelope
from schemas.conditions import constraint, equal_any, not_equal
from schemas.context import RequestContext

T = TypeVar("T")


class BlockingConductorClient:
    """``with BlockingConductorClient(url) as db: db.service_get_all(ctxt)``."""

    constraint = staticmethod(constraint)
    equal_any = staticmethod(equal_any)
    not_equal = staticmethod(not_equal)

    def __init__(self, url: str = DEFAULT_URL, topic: str = "conductor",
                 timeout: float = 60.0, retries: int = 0) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever,
                                        name="conductor-client", daemon=True)
        self._thread.start()
        self._async = ConductorClient(url, topic=topic, timeout=timeout, retries=retries)
        self._owner = True

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def connect(self) -> BlockingConductorClient:
        self._run(self._async.connect())
        return self

    def close(self) -> None:
        if not self._owner or not self._thread.is_alive():
            return
        try:
            self._run(self._async.close())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)

    def __enter__(self) -> BlockingConductorClient:
        return self.connect()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def options(self, *, timeout: float | None = None, retries: int | None = None,
                cast: bool | None = None) -> BlockingConductorClient:
        view = object.__new__(type(self))
        view.__dict__.update(self.__dict__)
        view._async = self._async.options(timeout=timeout, retries=retries, cast=cast)
        view._owner = False
        return view

    def call(self, method: str, context: RequestContext, *args: Any, **kwargs: Any) -> Any:
        return self._run(self._async.call(method, context, *args, **kwargs))

    def _invoke(self, func: catalog.Function, bound: inspect.BoundArguments) -> Any:
        return self._run(self._async._send(func, bound))

    def job_queue(self, max_calls: int = envelope.DEFAULT_MAX_BATCH) -> BlockingJobQueue:
        """``with db.job_queue() as q:``: the async client's job queue, blocking."""
        return BlockingJobQueue(self, max_calls)


class BlockingJobQueue(JobQueue):
    def __init__(self, client: BlockingConductorClient, max_calls: int) -> None:
        super().__init__(max_calls)
        self._client = client

    def __enter__(self) -> BlockingJobQueue:
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        if exc_type is None and self._calls:
            self._finish(self._client._run(self._client._async._send_batch(self._calls)))


_methods.install(BlockingConductorClient, BlockingConductorClient._invoke)
