"""Migrations (api-compute.md §3.5): all admin only, and every lookup sees deleted rows."""

from __future__ import annotations

import datetime as dt
import decimal
import math
from typing import Any

from conductor.db.base import utcnow
from conductor.db.models import Migration
from conductor.db.query import equals
from conductor.db.session import Row, Session
from conductor.handlers import api, plain
from schemas import exceptions
from schemas.context import RequestContext

migrations = Migration.__table__


migration_get = plain.get("migration_get", Migration, "id", exceptions.MigrationNotFound,
                          read_deleted="yes")
migration_create = plain.create("migration_create", Migration)
migration_update = plain.update("migration_update", Migration, migration_get)
migration_get_by_instance_and_status = plain.first(
    "migration_get_by_instance_and_status", Migration, "instance_uuid", "status",
    read_deleted="yes", missing=lambda instance_uuid, status: (
        exceptions.MigrationNotFoundByStatus(instance_id=instance_uuid, status=status)))


def _seconds(confirm_window: Any) -> float:
    seconds = math.nan
    if isinstance(confirm_window, (int, float, decimal.Decimal)) and \
            not isinstance(confirm_window, bool):
        try:
            seconds = float(confirm_window)
        except OverflowError:  # an int beyond float's range
            seconds = math.inf if confirm_window > 0 else -math.inf
        except ValueError:  # a signalling Decimal NaN
            pass
    if math.isnan(seconds):
        raise exceptions.InvalidInput(reason=f"confirm_window must be a number of seconds, "
                                      f"got {confirm_window!r}")
    return seconds


@api
async def migration_get_unconfirmed_by_dest_compute(session: Session,
                                                    context: RequestContext,
                                                    confirm_window: Any,
                                                    dest_compute: Any) -> list[Row]:
    seconds = _seconds(confirm_window)
    try:
        cutoff = utcnow() - dt.timedelta(seconds=seconds)
    except OverflowError:
        # a window beyond the calendar: nothing (or everything) is old enough
        cutoff = dt.datetime.min if seconds > 0 else dt.datetime.max
    # ``<=`` never holds for NULL: a migration never updated since creation is not listed.
    return await session.all(context, Migration, migrations.c.updated_at <= cutoff,
                             migrations.c.status == "finished",
                             equals(migrations.c.dest_compute, dest_compute),
                             read_deleted="yes")
