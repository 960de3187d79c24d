"""Agent builds (api-compute.md §3.15): all admin only.

There is no agent-build not-found exception: destroy and update of an unknown id do nothing.
"""

from __future__ import annotations

from typing import Any

from conductor.db.models import AgentBuild
from conductor.db.session import Session
from conductor.handlers import api, plain
from schemas.context import RequestContext

agent_build_create = plain.create("agent_build_create", AgentBuild)
agent_build_get_by_triple = plain.first("agent_build_get_by_triple", AgentBuild,
                                        "hypervisor", "os", "architecture", read_deleted="no")
agent_build_get_all = plain.rows("agent_build_get_all", AgentBuild, read_deleted="no")
# The parameter is the build's id (Nova's name).  A bulk soft delete: a deleted row
# matches too and gets a new deleted_at, updated_at stays.
agent_build_destroy = plain.destroy("agent_build_destroy", AgentBuild)


@api
async def agent_build_update(session: Session, context: RequestContext, agent_build_id: Any,
                             values: Any) -> None:
    row = await session.get_by(context, AgentBuild, "id", agent_build_id, read_deleted="yes")
    if row is None:
        # Nova crashes here; recommended: nothing happens, as for agent_build_destroy.
        return
    await session.update(AgentBuild, row, values)
