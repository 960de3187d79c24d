"""Storage-manager backend configs, flavors and volumes (api-network-quota-storage.md
§5.9-5.11).

Every lookup sees deleted rows too; errors are the base ``NotFound``/``Duplicate`` with a
free-text message, as Nova raises them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Table

from conductor.db.models import SMBackendConf, SMFlavors, SMVolume
from conductor.db.query import equals
from conductor.db.session import Row, Session
from conductor.handlers import api, plain
from schemas import exceptions
from schemas.context import RequestContext

backends = SMBackendConf.__table__
flavors = SMFlavors.__table__
sm_volumes = SMVolume.__table__



async def _first(session: Session, context: RequestContext, table: Table,
                 where: ColumnElement[bool], missing: str) -> Row:
    return await session.first(context, table, where, read_deleted="yes",
                               missing=lambda: exceptions.NotFound(missing))


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
    cols = session.check(backends, values)
    row = await _first(session, context, backends,
                       equals(backends.c.id, sm_backend_conf_id),
                       _backend_missing(sm_backend_conf_id))
    return await session.update(backends, row, cols, checked=True, echo=values)


sm_backend_conf_delete = plain.destroy("sm_backend_conf_delete", backends, hard=True)


@api
async def sm_backend_conf_get(session: Session, context: RequestContext,
                              sm_backend_conf_id: Any) -> Row:
    return await _first(session, context, backends, equals(backends.c.id, sm_backend_conf_id),
                        _backend_missing(sm_backend_conf_id))


@api
async def sm_backend_conf_get_by_sr(session: Session, context: RequestContext,
                                    sr_uuid: Any) -> Row:
    return await _first(session, context, backends, equals(backends.c.sr_uuid, sr_uuid),
                        f"No backend config with sr uuid {sr_uuid}")


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
    cols = session.check(flavors, values)
    row = await _first(session, context, flavors, equals(flavors.c.id, sm_flavor_id),
                       _flavor_missing(sm_flavor_id))
    return await session.update(flavors, row, cols, checked=True, echo=values)


sm_flavor_delete = plain.destroy("sm_flavor_delete", flavors, hard=True)


@api
async def sm_flavor_get(session: Session, context: RequestContext, sm_flavor_id: Any) -> Row:
    return await _first(session, context, flavors, equals(flavors.c.id, sm_flavor_id),
                        _flavor_missing(sm_flavor_id))


sm_flavor_get_all = plain.rows("sm_flavor_get_all", flavors, read_deleted="yes")


@api
async def sm_flavor_get_by_label(session: Session, context: RequestContext,
                                 sm_flavor_label: Any) -> Row:
    return await _first(session, context, flavors, equals(flavors.c.label, sm_flavor_label),
                        _flavor_missing(sm_flavor_label))


# --- volumes (no access check at all: unchecked in Nova) ------------------------------

def _sm_volume_missing(volume_id: Any) -> str:
    return f"No sm_volume with id {volume_id}"


sm_volume_create = plain.create("sm_volume_create", sm_volumes)


@api
async def sm_volume_update(session: Session, context: RequestContext, volume_id: Any,
                           values: Any) -> Row:
    # Nova 2012.2 drops volume_id on the way and fails; the contract passes it (§7 item 6).
    cols = session.check(sm_volumes, values)
    row = await _first(session, context, sm_volumes, equals(sm_volumes.c.id, volume_id),
                       _sm_volume_missing(volume_id))
    return await session.update(sm_volumes, row, cols, checked=True, echo=values)


sm_volume_delete = plain.destroy("sm_volume_delete", sm_volumes, hard=True)


@api
async def sm_volume_get(session: Session, context: RequestContext, volume_id: Any) -> Row:
    return await _first(session, context, sm_volumes, equals(sm_volumes.c.id, volume_id),
                        _sm_volume_missing(volume_id))


sm_volume_get_all = plain.rows("sm_volume_get_all", sm_volumes, read_deleted="yes")
