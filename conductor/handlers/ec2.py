"""EC2 instance id mappings (api-compute.md §3.12): the mapping row's ``id`` is the EC2 id."""

from __future__ import annotations

from typing import Any

from conductor.db.models import Instance, InstanceIdMapping
from conductor.db.query import equals
from conductor.db.session import Row, Session
from conductor.handlers import api
from schemas import exceptions
from schemas.context import RequestContext


async def create_instance_mapping(session: Session, instance_uuid: Any) -> Row:
    # A new row even when the uuid is already mapped, as Nova does.
    return await session.insert(InstanceIdMapping, {"uuid": instance_uuid})


@api
async def ec2_instance_create(session: Session, context: RequestContext,
                              instance_ec2_id: Any) -> Row:
    # The parameter is the instance uuid despite its name (Nova's signature).  No
    # mapping for another project's instance: it is missing to this caller.
    if await session.foreign(context, Instance,
                             equals(Instance.__table__.c.uuid, instance_ec2_id)):
        raise exceptions.InstanceNotFound(instance_id=instance_ec2_id)
    return await create_instance_mapping(session, instance_ec2_id)


@api
async def get_ec2_instance_id_by_uuid(session: Session, context: RequestContext,
                                      instance_id: Any) -> int:
    row = await session.get(context, InstanceIdMapping, "uuid", instance_id,
                            lambda: exceptions.InstanceNotFound(instance_id=instance_id))
    return int(row["id"])


@api
async def get_instance_uuid_by_ec2_id(session: Session, context: RequestContext,
                                      ec2_id: Any) -> str:
    row = await session.get(context, InstanceIdMapping, "id", ec2_id,
                            lambda: exceptions.InstanceNotFound(instance_id=ec2_id))
    return str(row["uuid"])
