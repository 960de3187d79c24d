"""Handlers that are one convention of :mod:`conductor.db` and nothing more, declared::

    certificate_get_all_by_user = plain.rows(
        "certificate_get_all_by_user", Certificate, "user_id", read_deleted="no")

A declared handler takes its catalog function's parameters, so it is registered and
checked like any ``@api`` function and other handlers may call it; the columns named in
the declaration are matched, in order, with those parameters.  A handler with any check
or step of its own is written out with ``@api`` instead.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from conductor.db.keyvalue import TypeSpecs, with_specs_dict
from conductor.db.query import equals, table_of
from conductor.db.session import Joins, Session
from conductor.handlers import Handler, api
from schemas import catalog
from schemas.context import RequestContext

# Called with the handler's arguments by name: an exception class whose keyword
# arguments are the parameters' names, or a lambda that renames them.
Missing = Callable[..., Exception]
_Body = Callable[[Session, RequestContext, dict[str, Any]], Awaitable[Any]]
_SESSION = inspect.Parameter("session", inspect.Parameter.POSITIONAL_OR_KEYWORD)


def _declare(name: str, body: _Body) -> Handler:
    full = catalog.BY_NAME[name].signature
    own = full.replace(parameters=[p for p in full.parameters.values()
                                   if p.name not in ("session", "context")])

    async def handler(session: Session, context: RequestContext, *args: Any,
                      **kwargs: Any) -> Any:
        bound = own.bind(*args, **kwargs)
        bound.apply_defaults()
        return await body(session, context, bound.arguments)

    handler.__name__ = handler.__qualname__ = name
    handler.__signature__ = full.replace(  # type: ignore[attr-defined]
        parameters=[_SESSION, *[p for p in full.parameters.values() if p.name != "session"]])
    return api(handler)


def _matching(model: Any, columns: tuple[str, ...], args: dict[str, Any]) -> list[Any]:
    table = table_of(model)
    return [equals(table.c[column], value) for column, value in zip(columns, args.values(),
                                                                    strict=True)]


def _raising(missing: Missing | None, args: dict[str, Any]) -> Callable[[], Exception] | None:
    return None if missing is None else lambda: missing(**args)


def create(name: str, model: Any) -> Handler:
    """Insert the caller's values (checked) and answer with them echoed (api-compute.md
    §1.5)."""
    async def body(session: Session, context: RequestContext, args: dict[str, Any]) -> Any:
        (values,) = args.values()
        return await session.insert(model, values, echo=values)
    return _declare(name, body)


def rows(name: str, model: Any, *columns: str, joins: Joins = (),
         read_deleted: str | None = None, project_only: Any = False,
         missing: Missing | None = None) -> Handler:
    """:meth:`Session.all`: the rows whose ``columns`` equal the arguments; ``missing``
    is raised for none."""
    async def body(session: Session, context: RequestContext, args: dict[str, Any]) -> Any:
        return await session.all(context, model, *_matching(model, columns, args),
                                 joins=joins, read_deleted=read_deleted,
                                 project_only=project_only,
                                 missing=_raising(missing, args))
    return _declare(name, body)


def first(name: str, model: Any, *columns: str, missing: Missing | None = None,
          read_deleted: str | None = None, joins: Joins = ()) -> Handler:
    """:meth:`Session.first`: the first row whose ``columns`` equal the arguments (None
    matching NULL), or ``missing`` raised (None without it)."""
    async def body(session: Session, context: RequestContext, args: dict[str, Any]) -> Any:
        return await session.first(context, model, *_matching(model, columns, args),
                                   joins=joins, read_deleted=read_deleted,
                                   missing=_raising(missing, args))
    return _declare(name, body)


def get(name: str, model: Any, column: str, missing: Missing, joins: Joins = (), *,
        read_deleted: str | None = None, project_only: Any = False,
        specs: bool = False) -> Handler:
    """:meth:`Session.get`: the row a key argument names (None names none), or
    ``missing``; with ``specs``, with its extra specs as ``{key: value}`` (flavors, volume
    types)."""
    joins = (*joins, "extra_specs") if specs else joins

    async def body(session: Session, context: RequestContext, args: dict[str, Any]) -> Any:
        (value,) = args.values()
        row = await session.get(context, model, column, value, lambda: missing(**args), joins,
                                read_deleted=read_deleted, project_only=project_only)
        return with_specs_dict(row) if specs else row
    return _declare(name, body)


def update(name: str, model: Any, lookup: Handler) -> Handler:
    """The row ``lookup`` (a getter, with its not-found error) finds for the key argument,
    updated with the caller's values and answered with them echoed."""
    async def body(session: Session, context: RequestContext, args: dict[str, Any]) -> Any:
        key, values = args.values()
        row = await lookup(session, context, key)
        return await session.update(model, row, values, echo=values)
    return _declare(name, body)


def type_lookups(family: TypeSpecs, prefix: str, not_found: Missing,
                 not_found_by_name: Missing) -> tuple[Handler, Handler, Handler]:
    """``<prefix>_get`` (by id) and ``<prefix>_get_by_name``, with the row's extra specs
    as ``{key: value}``, and ``<prefix>_destroy`` (by name: the type and all its specs
    soft-deleted): the functions Nova wrote alike for flavors and volume types. Nova's
    not-found errors name their argument ``<prefix>_id`` and ``<prefix>_name``."""
    def by_id(id: Any) -> Exception:
        return not_found(**{f"{prefix}_id": id})

    def by_name(name: Any) -> Exception:
        return not_found_by_name(**{f"{prefix}_name": name})

    named = get(f"{prefix}_get_by_name", family.model, "name", by_name, specs=True)

    async def destroy(session: Session, context: RequestContext, args: dict[str, Any]) -> None:
        (type_name,) = args.values()
        await family.destroy(session, await named(session, context, type_name))

    return (get(f"{prefix}_get", family.model, "id", by_id, specs=True), named,
            _declare(f"{prefix}_destroy", destroy))


def destroy(name: str, model: Any, column: str = "id", *, hard: bool = False) -> Handler:
    """Delete the rows whose ``column`` equals the argument, deleted ones included, in one
    statement (soft, ``updated_at`` kept; ``hard`` removes them); none is no error."""
    async def body(session: Session, context: RequestContext, args: dict[str, Any]) -> None:
        where = _matching(model, (column,), args)
        if hard:
            await session.hard_delete_where(model, *where)
        else:
            await session.soft_delete_where(model, *where)
    return _declare(name, body)
