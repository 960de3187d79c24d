"""Security groups, their rules, and provider firewall rules (api-network-quota-storage.md
§5.6, §5.7, §5.8).

Only ``security_group_get`` scopes user contexts to their project; every other function
here sees every project's rows (fidelity to 2012.2, §1.2).  :func:`ensure_default_group`
is shared with ``instance_create``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, func, select

from conductor.db.models import (
    Instance,
    ProviderFirewallRule,
    SecurityGroup,
    SecurityGroupIngressRule,
    SecurityGroupInstanceAssociation,
)
from conductor.db.query import authorize_project, equals, key_equals, not_deleted
from conductor.db.session import Row, Session
from conductor.db.values import lookup_int
from conductor.handlers import api, plain
from schemas import exceptions
from schemas.context import RequestContext

groups = SecurityGroup.__table__
links = SecurityGroupInstanceAssociation.__table__
rules = SecurityGroupIngressRule.__table__
instances = Instance.__table__

# What the firewall drivers walk: rule['grantee_group']['instances'][i]['instance_type'].
GRANTEE = ("grantee_group", "grantee_group.instances", "grantee_group.instances.instance_type")



def _linked_instance(*where: ColumnElement[bool]) -> ColumnElement[bool]:
    """A live association row to a live instance, matching ``where``."""
    return (select(links.c.id)
            .select_from(links.join(instances, instances.c.uuid == links.c.instance_uuid))
            .where(not_deleted(links), not_deleted(instances), *where)
            .exists())


def _by_name(session: Session, context: RequestContext, project_id: Any,
             group_name: Any) -> Any:
    # Non-deleted only, whatever the context says.
    return (session.query(context, SecurityGroup, read_deleted="no")
            .where(equals(groups.c.project_id, project_id),
                   equals(groups.c.name, group_name))
            .order_by(groups.c.id).limit(1))


async def ensure_default_group(session: Session, context: RequestContext) -> tuple[bool, Row]:
    """``security_group_ensure_default`` inside the caller's transaction: ``(True, group)``
    when the project's default group exists, else ``(False, the group just made)``; the
    group is bare (columns only)."""
    # Serialises the lookup-or-create per project, so two first calls (or two first
    # instance_create calls) make one group.
    await session.lock("security_group_default", context.project_id)
    found = await session.row(_by_name(session, context, context.project_id, "default"), bare=True)
    if found is not None:
        return (True, found)
    group = await session.insert(SecurityGroup, {
        "name": "default", "description": "default", "user_id": context.user_id,
        "project_id": context.project_id})
    return (False, group)


async def _group_count(session: Session, *where: ColumnElement[bool]) -> int:
    return int(await session.scalar(select(func.count(groups.c.id))
                                    .where(not_deleted(groups), *where)) or 0)


# --- security groups (§5.6) ----------------------------------------------------------------

security_group_get_all = plain.rows("security_group_get_all", SecurityGroup, joins=("rules",))


@api
async def security_group_get(session: Session, context: RequestContext,
                             security_group_id: Any) -> Row:
    return await session.get(
        context, SecurityGroup, "id", security_group_id,
        lambda: exceptions.SecurityGroupNotFound(security_group_id=security_group_id),
        project_only=True)


@api
async def security_group_get_by_name(session: Session, context: RequestContext,
                                     project_id: Any, group_name: Any) -> Row:
    session.own_project(context, project_id)
    return await session.one(_by_name(session, context, project_id, group_name),
                             lambda: exceptions.SecurityGroupNotFoundForProject(
                                 project_id=project_id, security_group_id=group_name))


@api
async def security_group_get_by_project(session: Session, context: RequestContext,
                                        project_id: Any) -> list[Row]:
    session.own_project(context, project_id)
    return await session.all(context, SecurityGroup, equals(groups.c.project_id, project_id),
                             joins=("rules",), read_deleted="no")


@api
async def security_group_get_by_instance(session: Session, context: RequestContext,
                                         instance_id: Any) -> list[Row]:
    # The integer instance id here, not the uuid.
    linked = _linked_instance(links.c.security_group_id == groups.c.id,
                              key_equals(instances.c.id, instance_id))
    return await session.all(context, SecurityGroup, linked, joins=("rules",),
                             read_deleted="no")


@api
async def security_group_exists(session: Session, context: RequestContext, project_id: Any,
                                group_name: Any) -> bool:
    found = await session.row(_by_name(session, context, project_id, group_name), bare=True)
    return found is not None


@api
async def security_group_in_use(session: Session, context: RequestContext,
                                group_id: Any) -> bool:
    key = lookup_int(group_id)
    if key is None:
        return False
    linked = _linked_instance(links.c.security_group_id == key,
                              *session.visible(context, SecurityGroupInstanceAssociation))
    return bool(await session.scalar(select(linked)))


@api
async def security_group_create(session: Session, context: RequestContext,
                                values: Any) -> Row:
    # No (project, name) uniqueness: callers ask security_group_exists first.
    row = await session.insert(SecurityGroup, values, echo=values)
    if await session.foreign(context, SecurityGroup, groups.c.id == row["id"]):
        raise exceptions.NotAuthorized()  # a group in another project
    await session.load(SecurityGroup, [row])
    return row


@api
async def security_group_ensure_default(session: Session,
                                        context: RequestContext) -> tuple[bool, Row]:
    found, group = await ensure_default_group(session, context)
    await session.load(SecurityGroup, [group])
    return (found, group)


@api
async def security_group_destroy(session: Session, context: RequestContext,
                                 security_group_id: Any) -> None:
    key = lookup_int(security_group_id)
    if key is None or await session.foreign(context, SecurityGroup, groups.c.id == key):
        return  # another project's group is as absent as a missing one
    await session.soft_delete_where(SecurityGroup, groups.c.id == key)
    await session.soft_delete_where(SecurityGroupInstanceAssociation,
                                    links.c.security_group_id == key)
    # Rules granting this group access go; the group's own rules stay (2012.2).
    await session.soft_delete_where(SecurityGroupIngressRule, rules.c.group_id == key)


@api
async def security_group_count_by_project(session: Session, context: RequestContext,
                                          project_id: Any) -> int:
    authorize_project(context, project_id)
    return await _group_count(session, equals(groups.c.project_id, project_id))


# --- rules (§5.7) ----------------------------------------------------------------------------

@api
async def security_group_rule_get(session: Session, context: RequestContext,
                                  security_group_rule_id: Any, *, bare: bool = False) -> Row:
    return await session.get(
        context, SecurityGroupIngressRule, "id", security_group_rule_id,
        lambda: exceptions.SecurityGroupNotFoundForRule(rule_id=security_group_rule_id),
        bare=bare)


async def _rules_by(session: Session, context: RequestContext, column: Any, group_id: Any,
                    joins: tuple[str, ...] = ()) -> list[Row]:
    return await session.all(context, SecurityGroupIngressRule, key_equals(column, group_id),
                             joins=joins)


@api
async def security_group_rule_create(session: Session, context: RequestContext,
                                     values: Any) -> Row:
    row = await session.insert(SecurityGroupIngressRule, values, echo=values)
    if await session.foreign(context, SecurityGroupIngressRule, rules.c.id == row["id"]):
        # a rule for another project's group: that group is not found, nothing is kept
        raise exceptions.SecurityGroupNotFound(security_group_id=row["parent_group_id"])
    await session.load(SecurityGroupIngressRule, [row])
    return row


@api
async def security_group_rule_get_by_security_group(session: Session,
                                                    context: RequestContext,
                                                    security_group_id: Any) -> list[Row]:
    return await _rules_by(session, context, rules.c.parent_group_id, security_group_id,
                           GRANTEE)


@api
async def security_group_rule_get_by_security_group_grantee(session: Session,
                                                            context: RequestContext,
                                                            security_group_id: Any
                                                            ) -> list[Row]:
    return await _rules_by(session, context, rules.c.group_id, security_group_id)


@api
async def security_group_rule_destroy(session: Session, context: RequestContext,
                                      security_group_rule_id: Any) -> None:
    rule = await security_group_rule_get(session, context, security_group_rule_id, bare=True)
    await session.soft_delete(SecurityGroupIngressRule, rule)


@api
async def security_group_rule_count_by_group(session: Session, context: RequestContext,
                                             security_group_id: Any) -> int:
    key = lookup_int(security_group_id)
    if key is None:
        return 0
    return int(await session.scalar(
        select(func.count(rules.c.id))
        .where(not_deleted(rules), rules.c.parent_group_id == key,
               *session.visible(context, SecurityGroupIngressRule))) or 0)


# --- provider firewall rules (§5.8) ----------------------------------------------------------

provider_fw_rule_create = plain.create("provider_fw_rule_create", ProviderFirewallRule)
provider_fw_rule_get_all = plain.rows("provider_fw_rule_get_all", ProviderFirewallRule)
provider_fw_rule_destroy = plain.destroy("provider_fw_rule_destroy", ProviderFirewallRule)
