"""Methods built from the catalog at import, with real signatures and docstrings.

``inspect.signature(db.instance_get)`` and ``help(db.instance_get)`` show Nova's parameters;
calling with the wrong arguments raises TypeError here, before anything is sent.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from schemas import catalog


def _doc(func: catalog.Function) -> str:
    what = {"read": "Read", "write": "Write"}.get(func.kind, "Local")
    access = {"admin": "admin context only", "any": "admin or user context",
              "none": "no context check"}[func.access]
    return (f"{func.name}{func.signature}\n\n{what} call of the conductor API "
            f"({access}; protocol {func.version}). Behaviour: see the spec entry "
            f"for {func.name}.")


def build_method(func: catalog.Function,
                 invoke: Callable[[Any, catalog.Function, inspect.BoundArguments], Any]
                 ) -> Callable[..., Any]:
    """A method ``(self, context, ...)`` that binds its arguments and calls ``invoke``."""
    sig = func.signature
    self_param = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    method_sig = sig.replace(parameters=[self_param, *sig.parameters.values()])

    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        bound = sig.bind(*args, **kwargs)
        return invoke(self, func, bound)

    method.__name__ = func.name
    method.__qualname__ = func.name
    method.__doc__ = _doc(func)
    method.__signature__ = method_sig  # type: ignore[attr-defined]
    return method


def install(cls: type, invoke: Callable[[Any, catalog.Function, inspect.BoundArguments], Any]
            ) -> None:
    for func in catalog.remote_functions():
        if func.name not in cls.__dict__:
            setattr(cls, func.name, build_method(func, invoke))
