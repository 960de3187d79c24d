"""The blocking client: the async client on a private event loop thread."""

from __future__ import annotations

import asyncio
import copy
import threading
from collections.abc import Coroutine, Sequence
from typing import Any, Self, TypeVar

from client._api import BlockingAPI
from client.core import DEFAULT_URL, ConductorClient
from client.jobs import JobQueue, QueuedCall
from schemas import envelope
from schemas.conditions import constraint, equal_any, not_equal
from schemas.context import RequestContext

T = TypeVar("T")


class BlockingConductorClient(BlockingAPI):
    """``with BlockingConductorClient(url) as db: db.service_get_all(ctxt)``.

    Takes the options of :class:`~client.ConductorClient` (``user_id=``, ``version_cap=``,
    ``password=``, ``ca_file=``, ``cert_file=``, ``key_file=``, ``external=``).
    """

    constraint = staticmethod(constraint)
    equal_any = staticmethod(equal_any)
    not_equal = staticmethod(not_equal)

    def __init__(self, url: str | Sequence[str] = DEFAULT_URL, topic: str = "conductor",
                 timeout: float = 60.0, retries: int = 0, *, user_id: str | None = None,
                 version_cap: str | None = None, password: str | None = None,
                 ca_file: str | None = None, cert_file: str | None = None,
                 key_file: str | None = None, external: bool = False) -> None:
        # Built first: a bad option raises before a thread is started.
        self._async = ConductorClient(url, topic=topic, timeout=timeout, retries=retries,
                                      user_id=user_id, version_cap=version_cap,
                                      password=password, ca_file=ca_file,
                                      cert_file=cert_file, key_file=key_file,
                                      external=external)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever,
                                        name="conductor-client", daemon=True)
        self._thread.start()
        self._owner = True

    @property
    def user_id(self) -> str:
        return self._async.user_id

    @property
    def version_cap(self) -> str | None:
        return self._async.version_cap

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def connect(self) -> Self:
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

    def __enter__(self) -> Self:
        return self.connect()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def options(self, *, timeout: float | None = None, retries: int | None = None,
                cast: bool | None = None, message_id: str | None = None) -> Self:
        """A view whose calls use other options; see ``ConductorClient.options``."""
        view = copy.copy(self)
        view._async = self._async.options(timeout=timeout, retries=retries, cast=cast,
                                          message_id=message_id)
        view._owner = False
        return view

    def call(self, method: str, context: RequestContext, *args: Any, **kwargs: Any) -> Any:
        """Call ``method`` by name; see ``ConductorClient.call``."""
        return self._run(self._async.call(method, context, *args, **kwargs))

    def send_batch(self, calls: Sequence[QueuedCall]) -> list[Any]:
        """Send queued writes as one batch; see ``ConductorClient.send_batch``."""
        return self._run(self._async.send_batch(calls))

    def job_queue(self, max_calls: int = envelope.DEFAULT_MAX_BATCH) -> BlockingJobQueue:
        """``with db.job_queue() as q:``: the async client's job queue, blocking."""
        return BlockingJobQueue(self, max_calls)


class BlockingJobQueue(JobQueue):
    def __init__(self, client: BlockingConductorClient, max_calls: int) -> None:
        super().__init__(max_calls, client.version_cap)
        self._client = client

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is None and self.calls:
            self._finish(self._client.send_batch(self.calls))
