"""DNS domains (api-network-quota-storage.md §3.2); the key is ``domain``, not an id."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from conductor.db.models import DNSDomain
from conductor.db.query import equals, not_deleted
from conductor.db.session import Row, Session
from conductor.handlers import api, plain
from schemas.context import RequestContext

domains = DNSDomain.__table__


@api
async def dnsdomain_get(session: Session, context: RequestContext,
                        fqdomain: Any) -> Row | None:
    # Exact-row lock: concurrent re-registrations of one domain wait for each other.
    return await session.row(session.query(context, DNSDomain, read_deleted="no")
                             .where(equals(domains.c.domain, fqdomain)).with_for_update())


async def _register(session: Session, context: RequestContext, fqdomain: Any,
                    values: Row) -> None:
    row = await dnsdomain_get(session, context, fqdomain)
    if row is None:
        # Two first registrations of one domain collide on the primary key here, and
        # the later one fails, as in Nova.
        await session.insert(DNSDomain, {"domain": fqdomain, "availability_zone": None,
                                         "project_id": None, **values})
    else:
        await session.update(DNSDomain, row, values)


@api
async def dnsdomain_register_for_zone(session: Session, context: RequestContext,
                                      fqdomain: Any, zone: Any) -> None:
    await _register(session, context, fqdomain,
                    {"scope": "private", "availability_zone": zone})


@api
async def dnsdomain_register_for_project(session: Session, context: RequestContext,
                                         fqdomain: Any, project: Any) -> None:
    await _register(session, context, fqdomain, {"scope": "public", "project_id": project})


dnsdomain_unregister = plain.destroy("dnsdomain_unregister", DNSDomain, "domain", hard=True)


@api
async def dnsdomain_list(session: Session, context: RequestContext) -> list[Any]:
    return await session.scalars(select(domains.c.domain).where(not_deleted(domains))
                                 .order_by(domains.c.domain))
