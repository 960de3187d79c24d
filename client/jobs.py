"""Job queues: writes queued locally, sent as one batch, run in one transaction.

The seed's ``with JobQueue():`` block (database-snapshots.md): inside it a write call
returns a :class:`Pending` handle instead of running; at the end of the block the calls
travel as one message and run in order, all or nothing.  The first failing call's error is
raised with its position as ``exc.batch_index``; reads cannot be queued.
"""

from __future__ import annotations

import inspect
from typing import Any

from client import _methods
from schemas import catalog


class Pending:
    """A queued call; ``result`` holds what it returned once the queue has run."""

    __slots__ = ("method", "_result", "_done")

    def __init__(self, method: str) -> None:
        self.method = method
        self._result: Any = None
        self._done = False

    def done(self) -> bool:
        return self._done

    @property
    def result(self) -> Any:
        if not self._done:
            raise RuntimeError(f"{self.method} has not run: its job queue has not been sent "
                               "(or failed)")
        return self._result

    def __repr__(self) -> str:
        state = f"result={self._result!r:.60}" if self._done else "pending"
        return f"<Pending {self.method} {state}>"


class JobQueue:
    """The catalog's methods, queued; subclasses send the batch at the end of the block."""

    def __init__(self, max_calls: int) -> None:
        self._max = max_calls
        self._calls: list[tuple[catalog.Function, inspect.BoundArguments]] = []
        self._handles: list[Pending] = []

    def __len__(self) -> int:
        return len(self._calls)

    def _invoke(self, func: catalog.Function, bound: inspect.BoundArguments) -> Pending:
        if func.kind != "write":
            raise TypeError(f"{func.name} is a read: only writes can be queued")
        if len(self._calls) >= self._max:
            raise ValueError(f"a job queue holds at most {self._max} calls")
        self._calls.append((func, bound))
        handle = Pending(func.name)
        self._handles.append(handle)
        return handle

    def _finish(self, results: list[Any]) -> None:
        for handle, result in zip(self._handles, results, strict=True):
            handle._result = result
            handle._done = True


_methods.install(JobQueue, JobQueue._invoke)
