"""Storage-manager backend configs, flavors and volumes (api-network-quota-storage.md
§5.9-5.11).

Every lookup sees deleted rows too; errors are the base ``NotFound``/``Duplicate`` with a
free-text message, as Nova raises them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Table

from conductor.db.models import SMBackendConf, SMFlavors, SMVolume
from conductor.db.query import equals
from conductor.db.session import Row, Session
from conductor.handlers import api, plain
from schemas import exceptions
from schemas.context import RequestContext

backends = SMBackendConf.__table__
flavors = SMFlavors.__table__
sm_volumes = SMVolume.__table__



def _not_found(message: Callable[[Any], str]) -> Callable[..., Exception]:
    """The base NotFound with ``message`` of the one argument, as plain's errors are called
    (by the parameter's name)."""
    return lambda **args: exceptions.NotFound(message(*args.values()))


async def _update(session: Session, context: RequestContext, table: Table, key: Any,
                  values: Any, missing: Callable[[Any], str]) -> Row:
    # the values are checked first: a refused value is the answer even for a missing row
    cols = session.check(table, values)
    row = await session.first(context, table, equals(table.c.id, key), read_deleted="yes",
                              missing=lambda: exceptions.NotFound(missing(key)))
    return await session.update(table, row, cols, checked=True, echo=values)


async def _create_unique(session: Session, context: RequestContext, table: Table,
                         values: Any, column: str, duplicate: str) -> Row:
    """Insert unless some row, deleted or not, has the same ``column``; one transaction."""
    if not isinstance(values, dict) or column not in values:
        raise exceptions.InvalidInput(reason=f"{table.name}: values must be a dict "
                                      f"containing {column!r}")
    cols = session.check(table, values)
    await session.lock(table.name, "create")  # closes the check-then-insert race
    found = await session.row(session.query(context, table, read_deleted="yes")
                              .where(equals(table.c[column], cols[column])).limit(1))
    if found is not None:
        raise exceptions.Duplicate(duplicate.format(values[column]))
    return await session.insert(table, cols, checked=True, echo=values)


# --- backend configs ----------------------------------------------------------------

def _backend_missing(sm_backend_conf_id: Any) -> str:
    return f"No backend config with id {sm_backend_conf_id}"


@api
async def sm_backend_conf_create(session: Session, context: RequestContext,
                                 values: Any) -> Row:
    return await _create_unique(session, context, backends, values, "config_params",
                                "Backend exists")


@api
async def sm_backend_conf_update(session: Session, context: RequestContext,
                                 sm_backend_conf_id: Any, values: Any) -> Row:
    return await _update(session, context, backends, sm_backend_conf_id, values,
                         _backend_missing)


sm_backend_conf_delete = plain.destroy("sm_backend_conf_delete", backends, hard=True)
sm_backend_conf_get = plain.first("sm_backend_conf_get", backends, "id", read_deleted="yes",
                                  missing=_not_found(_backend_missing))
sm_backend_conf_get_by_sr = plain.first(
    "sm_backend_conf_get_by_sr", backends, "sr_uuid", read_deleted="yes",
    missing=_not_found(lambda sr_uuid: f"No backend config with sr uuid {sr_uuid}"))
sm_backend_conf_get_all = plain.rows("sm_backend_conf_get_all", backends, read_deleted="yes")


# --- flavors ------------------------------------------------------------------------

def _flavor_missing(what: Any) -> str:
    return f"No sm_flavor called {what}"


@api
async def sm_flavor_create(session: Session, context: RequestContext, values: Any) -> Row:
    return await _create_unique(session, context, flavors, values, "label",
                                "Flavor ({}) already exists")


@api
async def sm_flavor_update(session: Session, context: RequestContext, sm_flavor_id: Any,
                           values: Any) -> Row:
    return await _update(session, context, flavors, sm_flavor_id, values, _flavor_missing)


sm_flavor_delete = plain.destroy("sm_flavor_delete", flavors, hard=True)
sm_flavor_get = plain.first("sm_flavor_get", flavors, "id", read_deleted="yes",
                            missing=_not_found(_flavor_missing))
sm_flavor_get_all = plain.rows("sm_flavor_get_all", flavors, read_deleted="yes")
sm_flavor_get_by_label = plain.first("sm_flavor_get_by_label", flavors, "label",
                                     read_deleted="yes", missing=_not_found(_flavor_missing))


# --- volumes (no access check at all: unchecked in Nova) ------------------------------

def _sm_volume_missing(volume_id: Any) -> str:
    return f"No sm_volume with id {volume_id}"


sm_volume_create = plain.create("sm_volume_create", sm_volumes)


@api
async def sm_volume_update(session: Session, context: RequestContext, volume_id: Any,
                           values: Any) -> Row:
    # Nova 2012.2 drops volume_id on the way and fails; the contract passes it (§7 item 6).
    return await _update(session, context, sm_volumes, volume_id, values, _sm_volume_missing)


sm_volume_delete = plain.destroy("sm_volume_delete", sm_volumes, hard=True)
sm_volume_get = plain.first("sm_volume_get", sm_volumes, "id", read_deleted="yes",
                            missing=_not_found(_sm_volume_missing))
sm_volume_get_all = plain.rows("sm_volume_get_all", sm_volumes, read_deleted="yes")
