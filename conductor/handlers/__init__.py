"""Handlers: one module per domain, one ``async def`` per API function.

A handler has the catalog's signature with the session in front::

    @api
    async def service_get(session, context, service_id): ...

and is registered under its function name.  After the catalog's parameters a handler may
take keyword-only options with defaults (``lock=False``, ``joins=...``) for the other
handlers that call it in-process: the dispatcher binds a call against the catalog's
signature, so a caller can never set them.  Nova's own ``session=None`` parameters
(``instance_data_get_for_project``, ``task_log_*``, ...) are in-process only: the
dispatcher refuses a value for them and the handler does not take them.  Importing this
package does not import the domain modules; :func:`load_all` does, once, at server start.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from schemas import catalog

Handler = Callable[..., Awaitable[Any]]
H = TypeVar("H", bound=Handler)

HANDLERS: dict[str, Handler] = {}

# Declared in nova/db/api.py but never implemented in 2012.2: the contract says they answer
# NotImplementedError (arriving as RemoteError), and api-coverage reports them apart.
DECLARED_ONLY = frozenset({"network_create_fixed_ips", "network_get_index",
                           "network_set_cidr", "volume_get_by_ec2_id"})


def api(func: H) -> H:
    """Register ``func`` as the handler of the catalog function of the same name."""
    name = func.__name__
    if catalog.get(name) is None:
        raise LookupError(f"{func.__module__}.{name} names no function of the catalog")
    if name in HANDLERS and HANDLERS[name] is not func:
        raise LookupError(f"{name} has two handlers: {HANDLERS[name].__module__} and "
                          f"{func.__module__}")
    HANDLERS[name] = func
    return func


def load_all() -> dict[str, Handler]:
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")
    return HANDLERS


def signature_mismatches() -> list[str]:
    """Handlers whose parameters differ from ``session`` + the catalog's signature
    (+ in-process keyword-only options with defaults)."""
    problems = []
    for name, func in sorted(HANDLERS.items()):
        full = catalog.BY_NAME[name].signature
        expected = full.replace(parameters=[p for p in full.parameters.values()
                                            if p.name != "session"])
        params = list(inspect.signature(func).parameters.values())
        if not params or params[0].name != "session":
            problems.append(f"{name}: first parameter must be 'session'")
            continue
        actual = inspect.Signature([p.replace(annotation=inspect.Parameter.empty)
                                    for p in params[1:]
                                    if p.name in expected.parameters
                                    or not _in_process_option(p)])
        if actual != expected:
            problems.append(f"{name}: handler takes {actual}, catalog says {expected}")
    return problems


def _in_process_option(param: inspect.Parameter) -> bool:
    return param.kind is param.KEYWORD_ONLY and param.default is not param.empty
