"""Certificates (api-compute.md §3.4): all admin only, the getters never see deleted rows."""

from __future__ import annotations

from typing import Any

from conductor.db.models import Certificate
from conductor.db.query import equals
from conductor.db.session import Row, Session
from conductor.handlers import api
from schemas.context import RequestContext

certificates = Certificate.__table__


@api
async def certificate_create(session: Session, context: RequestContext, values: Any) -> Row:
    return await session.insert(Certificate, session.check(Certificate, values), checked=True,
                                echo=values)


@api
async def certificate_get_all_by_project(session: Session, context: RequestContext,
                                         project_id: Any) -> list[Row]:
    return await session.all(context, Certificate,
                             equals(certificates.c.project_id, project_id), read_deleted="no")


@api
async def certificate_get_all_by_user(session: Session, context: RequestContext,
                                      user_id: Any) -> list[Row]:
    return await session.all(context, Certificate, equals(certificates.c.user_id, user_id),
                             read_deleted="no")


@api
async def certificate_get_all_by_user_and_project(session: Session, context: RequestContext,
                                                  user_id: Any, project_id: Any) -> list[Row]:
    return await session.all(context, Certificate, equals(certificates.c.user_id, user_id),
                             equals(certificates.c.project_id, project_id), read_deleted="no")
