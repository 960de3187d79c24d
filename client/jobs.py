"""Job queues: writes queued locally, sent as one batch, run in one transaction.

The seed's ``with JobQueue():`` block (database-snapshots.md): inside it a write call
returns a :class:`Pending` handle instead of running; at the end of the block the calls
travel as one message and run in order, all or nothing.  The first failing call's error is
raised with its position as ``exc.batch_index``; reads cannot be queued.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from client._api import QueueAPI
from schemas import catalog, exceptions
from schemas.context import RequestContext


@dataclass(frozen=True)
class QueuedCall:
    """One call of a batch, its arguments already bound against the catalog."""

    function: catalog.Function
    context: RequestContext
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


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


def bind(method: str, context: RequestContext, args: tuple[Any, ...],
         kwargs: dict[str, Any], version_cap: str | None) -> QueuedCall:
    """Bind a call against the catalog and check it may be sent under ``version_cap``.

    Raises what a wrong call raises locally: AttributeError for a name the API lacks,
    TypeError for arguments Nova's signature does not take, VersionCapExceeded.
    """
    func = catalog.get(method)
    if func is None or func.kind == "local":
        raise AttributeError(f"the conductor API has no function {method!r}")
    bound = func.signature.bind(context, *args, **kwargs)
    if not isinstance(context, RequestContext):
        raise TypeError(f"{method}: context must be a RequestContext, "
                        f"not {type(context).__name__}")
    if version_cap is not None and not catalog.version_allows(version_cap, func.version):
        raise exceptions.VersionCapExceeded(method=method, version=func.version,
                                            version_cap=version_cap)
    return QueuedCall(func, context, bound.args[1:], dict(bound.kwargs))


class JobQueue(QueueAPI):
    """The catalog's writes, queued; subclasses send the batch at the end of the block."""

    def __init__(self, max_calls: int, version_cap: str | None = None) -> None:
        self._max = max_calls
        self._version_cap = version_cap
        self.calls: list[QueuedCall] = []
        self._handles: list[Pending] = []

    def __len__(self) -> int:
        return len(self.calls)

    def add(self, method: str, context: RequestContext, *args: Any,
            **kwargs: Any) -> Pending:
        """Queue ``method`` by name (what the generated methods do)."""
        func = catalog.get(method)
        if func is not None and func.kind == "read":
            raise TypeError(f"{method} is a read: only writes can be queued")
        call = bind(method, context, args, kwargs, self._version_cap)
        if len(self.calls) >= self._max:
            raise ValueError(f"a job queue holds at most {self._max} calls")
        self.calls.append(call)
        handle = Pending(method)
        self._handles.append(handle)
        return handle

    def _finish(self, results: list[Any]) -> None:
        for handle, result in zip(self._handles, results, strict=True):
            handle._result = result
            handle._done = True

    if not TYPE_CHECKING:
        # A read has no method here; say why rather than "no attribute". Hidden from type
        # checkers, which would otherwise accept any attribute name.
        def __getattr__(self, name: str) -> Any:
            func = catalog.get(name)
            if func is not None and func.kind == "read":
                raise TypeError(f"{name} is a read: only writes can be queued")
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
