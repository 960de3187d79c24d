"""Relationship loading: the one-statement loader equals the per-relationship one."""

from sqlalchemy import select

from conductor.db.loading import PER_RELATION
from conductor.db.models import (
    Aggregate,
    ComputeNode,
    Instance,
    SecurityGroup,
    SecurityGroupIngressRule,
)
from conductor.db.session import Session
from conductor.dispatch import Dispatcher
from conductor.handlers.instances import FULL, LISTED
from schemas.context import get_admin_context
from tests.support import LocalClient

ADMIN = get_admin_context()


async def _both_ways(conn, stmt, joins):
    inline = Session(conn, "test")  # PostgreSQL's own loader: inline arrays
    batched = Session(conn, "test", loader=PER_RELATION)
    assert inline.loader is not batched.loader
    return await inline.rows(stmt, joins), await batched.rows(stmt, joins)


async def test_inline_loading_equals_batched_loading(pg_engine, handlers):
    from tests.conftest import _wipe

    await _wipe(pg_engine)
    db = LocalClient(Dispatcher(pg_engine))
    flavor = await db.instance_type_create(ADMIN, {"name": "m1", "flavorid": "1",
                                                   "memory_mb": 512, "vcpus": 1,
                                                   "root_gb": 1, "extra_specs": {"a": "b"}})
    made = []
    for i in range(3):
        made.append(await db.instance_create(
            ADMIN, {"host": f"h{i}", "instance_type_id": flavor["id"] if i else None,
                    "metadata": {"k": str(i), "x": "y"}, "security_groups": ["default"],
                    "info_cache": {"network_info": "[]"} if i != 1 else None}))
    await db.instance_metadata_delete(ADMIN, made[2]["uuid"], "x")
    grantee = await db.security_group_create(ADMIN, {"name": "g", "project_id": "p"})
    await db.instance_add_security_group(ADMIN, made[1]["uuid"], grantee["id"])
    await db.security_group_rule_create(ADMIN, {"parent_group_id": grantee["id"],
                                                "group_id": grantee["id"], "protocol": "tcp"})
    service = await db.service_create(ADMIN, {"host": "h0", "topic": "compute"})
    await db.compute_node_create(ADMIN, {"service_id": service["id"],
                                         "stats": {"a": 1, "b": 2}})
    async with pg_engine.connect() as conn:
        for model, joins in ((Instance, FULL), (Instance, LISTED),
                             (Instance, ("system_metadata", "block_device_mapping")),
                             (ComputeNode, ("service", "stats")),
                             (SecurityGroupIngressRule,
                              ("grantee_group", "grantee_group.instances",
                               "grantee_group.instances.instance_type")),
                             # three instances in "default", linked by uuid: id order
                             (SecurityGroup, ("instances", "rules")),
                             (Aggregate, ("_hosts", "_metadata"))):
            table = model.__table__
            inline, batched = await _both_ways(conn, select(table).order_by(table.c.id),
                                               joins)
            assert inline == batched, model.__name__
            assert inline or model is Aggregate
    assert made[0]["security_groups"][0]["name"] == "default"
