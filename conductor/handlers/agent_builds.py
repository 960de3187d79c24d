"""Agent builds (api-compute.md §3.15): all admin only.

There is no agent-build not-found exception: destroy and update of an unknown id do nothing.
"""

from __future__ import annotations

from typing import Any

from conductor.db.models import AgentBuild
from conductor.db.query import equals
from conductor.db.session import Row, Session
from conductor.handlers import api
from schemas.context import RequestContext

builds = AgentBuild.__table__


@api
async def agent_build_create(session: Session, context: RequestContext, values: Any) -> Row:
    return await session.insert(AgentBuild, session.check(AgentBuild, values), checked=True,
                                echo=values)


@api
async def agent_build_get_by_triple(session: Session, context: RequestContext,
                                    hypervisor: Any, os: Any, architecture: Any
                                    ) -> Row | None:
    return await session.first(context, AgentBuild, equals(builds.c.hypervisor, hypervisor),
                               equals(builds.c.os, os),
                               equals(builds.c.architecture, architecture), read_deleted="no")


@api
async def agent_build_get_all(session: Session, context: RequestContext) -> list[Row]:
    return await session.all(context, AgentBuild, read_deleted="no")


@api
async def agent_build_destroy(session: Session, context: RequestContext,
                              agent_update_id: Any) -> None:
    # The parameter is the build's id (Nova's name).  A bulk soft delete: a deleted row
    # matches too and gets a new deleted_at, updated_at stays.
    await session.soft_delete_where(AgentBuild, equals(builds.c.id, agent_update_id))


@api
async def agent_build_update(session: Session, context: RequestContext, agent_build_id: Any,
                             values: Any) -> None:
    row = await session.get_by(context, AgentBuild, "id", agent_build_id, read_deleted="yes")
    if row is None:
        # Nova crashes here; recommended: nothing happens, as for agent_build_destroy.
        return
    await session.update(AgentBuild, row, values)
