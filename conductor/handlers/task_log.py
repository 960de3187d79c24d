"""Task log (api-compute.md §3.18): audit records of periodic tasks, all admin only.

A task is named by ``(task_name, period_beginning, period_ending, host)``.  The periods
are text columns: a datetime is stored and compared as ``str()`` of its naive UTC value.
Nova's in-process ``session`` parameters are dropped by the dispatcher.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ColumnElement, Select

from conductor.db.models import TaskLog
from conductor.db.query import equals
from conductor.db.session import Row, Session
from conductor.handlers import api
from schemas import exceptions
from schemas.context import RequestContext

task_log = TaskLog.__table__



def _period(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return str(value)
    return value


def _task(session: Session, context: RequestContext, task_name: Any, period_beginning: Any,
          period_ending: Any, *more: ColumnElement[bool]) -> Select[Any]:
    return (session.query(context, TaskLog)
            .where(equals(task_log.c.task_name, task_name),
                   equals(task_log.c.period_beginning, _period(period_beginning)),
                   equals(task_log.c.period_ending, _period(period_ending)), *more)
            .order_by(task_log.c.id))



def _checked(session: Session, values: dict[str, Any]) -> Row:
    """``values`` checked, except that a None goes to the database as it is: these are
    arguments, not a values dict, and a NULL that a NOT NULL column refuses is a DBError
    as in Nova (a missing message above all, §3.18 Quirk), not InvalidInput."""
    cols = session.check(TaskLog, {k: v for k, v in values.items() if v is not None})
    cols.update({k: None for k, v in values.items() if v is None})
    return cols


@api
async def task_log_get(session: Session, context: RequestContext, task_name: Any,
                       period_beginning: Any, period_ending: Any, host: Any,
                       state: Any = None) -> Row | None:
    more = [equals(task_log.c.host, host)]
    if state is not None:
        more.append(equals(task_log.c.state, state))
    return await session.row(_task(session, context, task_name, period_beginning, period_ending,
                                   *more).limit(1))


@api
async def task_log_get_all(session: Session, context: RequestContext, task_name: Any,
                           period_beginning: Any, period_ending: Any, host: Any = None,
                           state: Any = None) -> list[Row]:
    more = []
    if host is not None:
        more.append(equals(task_log.c.host, host))
    if state is not None:
        more.append(equals(task_log.c.state, state))
    return await session.rows(_task(session, context, task_name, period_beginning, period_ending,
                                    *more))


@api
async def task_log_begin_task(session: Session, context: RequestContext, task_name: Any,
                              period_beginning: Any, period_ending: Any, host: Any,
                              task_items: Any = None, message: Any = None) -> Row:
    beginning, ending = _period(period_beginning), _period(period_ending)
    # Two callers must not both begin one task: the check and the insert are one step
    # under the lock.
    await session.lock("task_log", task_name, beginning, ending, host)
    found = await session.row(_task(session, context, task_name, beginning, ending,
                                    equals(task_log.c.host, host)).limit(1))
    if found is not None:
        raise exceptions.TaskAlreadyRunning(task_name=task_name, host=host)
    values = {"task_name": task_name, "period_beginning": beginning,
              "period_ending": ending, "host": host, "state": "RUNNING", "errors": 0,
              "message": message or None}
    echo = {}
    if task_items:
        values["task_items"] = echo["task_items"] = task_items
    return await session.insert(TaskLog, _checked(session, values), checked=True, echo=echo)


@api
async def task_log_end_task(session: Session, context: RequestContext, task_name: Any,
                            period_beginning: Any, period_ending: Any, host: Any,
                            errors: Any, message: Any = None) -> Row:
    found = await session.row(_task(session, context, task_name, period_beginning, period_ending,
                                    equals(task_log.c.host, host)).limit(1))
    if found is None:
        raise exceptions.TaskNotRunning(task_name=task_name, host=host)
    values = {"state": "DONE", "errors": errors}
    if message:
        values["message"] = message
    return await session.update(TaskLog, found, _checked(session, values), checked=True,
                                echo=values)
