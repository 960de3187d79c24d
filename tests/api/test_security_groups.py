"""security_group_*, security_group_rule_*, provider_fw_rule_* (api-network-quota-storage.md
§5.6-§5.8), through the client (RabbitMQ -> conductor -> PostgreSQL) and on SQLite."""

import asyncio

import pytest
from sqlalchemy import update

from conductor.db.models import SecurityGroup
from schemas import exceptions
from schemas.context import RequestContext, get_admin_context

YES = get_admin_context("yes")
ANON = RequestContext(None, None)
GROUPS = SecurityGroup.__table__


@pytest.fixture
def raw(_api_backend, db):
    """The engine behind ``db`` (already emptied), for a state no function makes."""
    return _api_backend[0]


async def _group(db, ctx, name="web", project_id="project1", user_id="user1"):
    return await db.security_group_create(ctx, {"name": name, "description": name,
                                                "project_id": project_id,
                                                "user_id": user_id})


async def _rule(db, ctx, parent, grantee=None, port=22):
    return await db.security_group_rule_create(ctx, {
        "parent_group_id": parent, "group_id": grantee, "protocol": "tcp",
        "from_port": port, "to_port": port, "cidr": None if grantee else "0.0.0.0/0"})


async def _instance(db, ctx, groups=("default",), **values):
    base = {"project_id": ctx.project_id, "user_id": ctx.user_id,
            "security_groups": list(groups)}
    base.update(values)
    return await db.instance_create(ctx, base)


async def test_create_get_and_scoping(db, admin, user, other_user):
    group = await _group(db, user)
    assert group["rules"] == [] and group["name"] == "web" and group["id"] > 0
    assert group["deleted"] is False and group["created_at"] is not None
    assert group["instances"] == []
    rule = await _rule(db, user, group["id"])
    inst = await _instance(db, user, groups=("web",))
    got = await db.security_group_get(user, group["id"])
    assert [r["id"] for r in got["rules"]] == [rule["id"]]
    assert [i["uuid"] for i in got["instances"]] == [inst["uuid"]]
    assert got["instances"][0]["name"] == inst["name"]
    assert "security_groups" not in got["instances"][0]
    assert (await db.security_group_get(admin, group["id"]))["id"] == group["id"]
    # strict project scoping: another project's group is simply not found
    with pytest.raises(exceptions.SecurityGroupNotFound) as info:
        await db.security_group_get(other_user, group["id"])
    assert info.value.kwargs == {"security_group_id": group["id"], "code": 404}
    with pytest.raises(exceptions.SecurityGroupNotFound):
        await db.security_group_get(user, "junk")
    with pytest.raises(exceptions.NotAuthorized):
        await db.security_group_get(ANON, group["id"])
    with pytest.raises(exceptions.NotAuthorized):
        await _group(db, ANON)


async def test_get_all_by_project_and_count(db_config, db, admin, user, other_user, monkeypatch):
    # reads across projects as 2012.2 answers them (strict isolation: test_isolation.py)
    monkeypatch.setattr(db_config, "isolation", "nova")
    g1 = await _group(db, user, "a")
    g2 = await _group(db, other_user, "b", project_id="project2", user_id="user2")
    g3 = await _group(db, user, "c")
    rule = await _rule(db, user, g1["id"])
    await db.security_group_destroy(user, g3["id"])
    everything = await db.security_group_get_all(other_user)  # no project scoping
    assert [g["id"] for g in everything] == [g1["id"], g2["id"]]
    assert [r["id"] for r in everything[0]["rules"]] == [rule["id"]]
    assert everything[0]["instances"] == []
    assert [g["id"] for g in await db.security_group_get_all(YES)] == \
        [g1["id"], g2["id"], g3["id"]]
    mine = await db.security_group_get_by_project(other_user, "project1")
    assert [g["id"] for g in mine] == [g1["id"]] and len(mine[0]["rules"]) == 1
    assert [g["id"] for g in await db.security_group_get_by_project(YES, "project1")] == \
        [g1["id"]]
    assert await db.security_group_count_by_project(user, "project1") == 1
    assert await db.security_group_count_by_project(admin, "project2") == 1
    assert await db.security_group_count_by_project(admin, "nobody") == 0
    with pytest.raises(exceptions.NotAuthorized):
        await db.security_group_count_by_project(user, "project2")


async def test_get_by_name_and_exists(db_config, db, user, other_user, monkeypatch):
    # reads across projects as 2012.2 answers them (strict isolation: test_isolation.py)
    monkeypatch.setattr(db_config, "isolation", "nova")
    group = await _group(db, user)
    inst = await _instance(db, user, groups=("web",))
    await _rule(db, user, group["id"])
    got = await db.security_group_get_by_name(other_user, "project1", "web")  # no check
    assert got["id"] == group["id"] and len(got["rules"]) == 1
    assert [i["uuid"] for i in got["instances"]] == [inst["uuid"]]
    assert await db.security_group_exists(other_user, "project1", "web") is True
    assert await db.security_group_exists(user, "project1", "nope") is False
    with pytest.raises(exceptions.SecurityGroupNotFoundForProject) as info:
        await db.security_group_get_by_name(user, "project2", "web")
    assert info.value.kwargs == {"project_id": "project2", "security_group_id": "web",
                                 "code": 404}
    await db.security_group_destroy(user, group["id"])
    with pytest.raises(exceptions.SecurityGroupNotFoundForProject):
        await db.security_group_get_by_name(RequestContext("user1", "project1",
                                                           read_deleted="yes"),
                                            "project1", "web")
    assert await db.security_group_exists(user, "project1", "web") is False


async def test_by_instance_and_in_use(db, user):
    web = await _group(db, user)
    spare = await _group(db, user, "spare")
    await _rule(db, user, web["id"])
    inst = await _instance(db, user, groups=("default", "web"))
    other = await _instance(db, user, groups=("web",))
    found = await db.security_group_get_by_instance(user, inst["id"])
    assert [g["name"] for g in found] == ["web", "default"]  # ascending id
    assert len(found[0]["rules"]) == 1
    # every group result carries its instances, which carry nothing nested
    assert [i["uuid"] for i in found[0]["instances"]] == [inst["uuid"], other["uuid"]]
    assert "system_metadata" not in found[0]["instances"][0]
    # a second link to the same group does not list it twice
    await db.instance_add_security_group(user, inst["uuid"], web["id"])
    assert len(await db.security_group_get_by_instance(user, inst["id"])) == 2
    assert await db.security_group_get_by_instance(user, 4242) == []
    assert await db.security_group_get_by_instance(user, "x") == []
    assert await db.security_group_in_use(user, web["id"]) is True
    assert await db.security_group_in_use(user, spare["id"]) is False
    assert await db.security_group_in_use(user, "x") is False
    await db.instance_destroy(user, inst["uuid"])
    assert await db.security_group_get_by_instance(user, inst["id"]) == []
    assert await db.security_group_in_use(user, web["id"]) is True  # still `other`
    await db.instance_destroy(user, other["uuid"])
    assert await db.security_group_in_use(user, web["id"]) is False
    # an association of a deleted instance does not count, a removed link neither
    third = await _instance(db, user, groups=("web",))
    await db.instance_remove_security_group(user, third["uuid"], web["id"])
    assert await db.security_group_in_use(user, web["id"]) is False


async def test_ensure_default(db, user, other_user):
    created, group = await db.security_group_ensure_default(user)
    assert created is False
    assert (group["name"], group["description"], group["user_id"], group["project_id"]) == \
        ("default", "default", "user1", "project1")
    assert group["rules"] == []
    result = await db.security_group_ensure_default(user)
    assert isinstance(result, tuple) and result[0] is True
    assert result[1]["id"] == group["id"]
    assert result[1]["rules"] == [] and result[1]["instances"] == []
    # per project; instance_create reuses the same group
    again = await db.security_group_ensure_default(other_user)
    assert again[0] is False and again[1]["id"] != group["id"]
    inst = await _instance(db, user)
    assert [g["id"] for g in inst["security_groups"]] == [group["id"]]
    assert await db.security_group_count_by_project(user, "project1") == 1
    # unchecked: an anonymous context is not refused
    anon = await db.security_group_ensure_default(ANON)
    assert anon[0] is False and anon[1]["project_id"] is None


async def test_concurrent_ensure_default_makes_one_group(db, user):
    results = await asyncio.gather(*(db.security_group_ensure_default(user)
                                     for _ in range(6)))
    assert sorted(created for created, _ in results) == [False] + [True] * 5
    assert len({group["id"] for _, group in results}) == 1
    assert await db.security_group_count_by_project(user, "project1") == 1


async def test_destroy(db_config, db, admin, user, monkeypatch):
    # reads across projects as 2012.2 answers them (strict isolation: test_isolation.py)
    monkeypatch.setattr(db_config, "isolation", "nova")
    target = await _group(db, user, "target")
    granting = await _group(db, user, "granting")
    own = await _rule(db, user, target["id"])
    grant = await _rule(db, user, granting["id"], grantee=target["id"])
    inst = await _instance(db, user, groups=("target",))
    other_user = RequestContext("user2", "project2")
    assert await db.security_group_destroy(other_user, target["id"]) is None  # no check
    with pytest.raises(exceptions.SecurityGroupNotFound):
        await db.security_group_get(user, target["id"])
    gone = await db.security_group_get(YES, target["id"])
    assert gone["deleted"] is True and gone["deleted_at"] is not None
    assert gone["updated_at"] is None  # bulk soft delete keeps updated_at
    assert gone["instances"] == []
    # the group's own rule stays (2012.2); the rule granting it access goes
    assert (await db.security_group_rule_get(user, own["id"]))["deleted"] is False
    with pytest.raises(exceptions.SecurityGroupNotFoundForRule):
        await db.security_group_rule_get(user, grant["id"])
    assert (await db.security_group_rule_get(YES, grant["id"]))["updated_at"] is None
    assert await db.instance_get_by_uuid(user, inst["uuid"]) is not None
    assert (await db.instance_get_by_uuid(user, inst["uuid"]))["security_groups"] == []
    assert await db.security_group_destroy(user, 4242) is None
    assert await db.security_group_destroy(user, "junk") is None


async def test_rules(db, admin, user):
    flavor = await db.instance_type_create(admin, {
        "name": "m1.test", "flavorid": "100", "memory_mb": 512, "vcpus": 1, "root_gb": 10,
        "ephemeral_gb": 0})
    parent = await _group(db, user, "parent")
    grantee = await _group(db, user, "grantee")
    inst = await _instance(db, user, groups=("grantee",), instance_type_id=flavor["id"])
    open_rule = await _rule(db, user, parent["id"])
    granted = await _rule(db, user, parent["id"], grantee=grantee["id"], port=80)
    assert set(open_rule) >= {"id", "parent_group_id", "protocol", "from_port", "to_port",
                              "cidr", "group_id", "created_at", "deleted"}
    assert open_rule["grantee_group"] is None and "parent_group" not in open_rule
    assert await db.security_group_rule_get(user, open_rule["id"]) == open_rule

    listed = await db.security_group_rule_get_by_security_group(user, parent["id"])
    assert [r["id"] for r in listed] == [open_rule["id"], granted["id"]]
    assert listed[0]["grantee_group"] is None
    walked = listed[1]["grantee_group"]
    assert walked["id"] == grantee["id"] and "rules" not in walked
    assert [i["uuid"] for i in walked["instances"]] == [inst["uuid"]]
    assert walked["instances"][0]["instance_type"]["flavorid"] == "100"
    by_grantee = await db.security_group_rule_get_by_security_group_grantee(
        user, grantee["id"])
    assert [r["id"] for r in by_grantee] == [granted["id"]]
    # every rule result carries its grantee group with the group's instances
    assert [i["uuid"] for i in by_grantee[0]["grantee_group"]["instances"]] == \
        [inst["uuid"]]
    assert "instance_type" not in by_grantee[0]["grantee_group"]["instances"][0]
    assert await db.security_group_rule_count_by_group(user, parent["id"]) == 2
    assert await db.security_group_rule_get_by_security_group(user, "x") == []

    # a deleted grantee group is still included, but lists no instances; a deleted
    # flavor is still shown on its instance
    await db.instance_type_destroy(admin, "m1.test")
    listed = await db.security_group_rule_get_by_security_group(user, parent["id"])
    assert listed[1]["grantee_group"]["instances"][0]["instance_type"]["deleted"] is True
    await db.security_group_destroy(user, grantee["id"])
    listed = await db.security_group_rule_get_by_security_group(YES, parent["id"])
    assert listed[1]["grantee_group"] is None  # the rule itself is deleted now

    assert await db.security_group_rule_destroy(user, open_rule["id"]) is None
    assert await db.security_group_rule_count_by_group(user, parent["id"]) == 0
    assert await db.security_group_rule_get_by_security_group(user, parent["id"]) == []
    dead = await db.security_group_rule_get(YES, open_rule["id"])
    assert dead["deleted"] is True and dead["updated_at"] is not None  # row soft delete
    with pytest.raises(exceptions.SecurityGroupNotFoundForRule) as info:
        await db.security_group_rule_destroy(user, open_rule["id"])
    assert info.value.kwargs == {"rule_id": open_rule["id"], "code": 404}
    with pytest.raises(exceptions.SecurityGroupNotFoundForRule):
        await db.security_group_rule_get(user, "junk")
    with pytest.raises(exceptions.NotAuthorized):
        await db.security_group_rule_get(ANON, granted["id"])


async def test_deleted_grantee_group_lists_no_instances(db, raw, user):
    parent = await _group(db, user, "parent")
    grantee = await _group(db, user, "grantee")
    await _instance(db, user, groups=("grantee",))
    await _rule(db, user, parent["id"], grantee=grantee["id"])
    # only the group row: security_group_destroy would delete the granting rule too
    async with raw.begin() as conn:
        await conn.execute(update(GROUPS).where(GROUPS.c.id == grantee["id"])
                           .values(deleted=True))
    listed = await db.security_group_rule_get_by_security_group(user, parent["id"])
    assert listed[0]["grantee_group"]["deleted"] is True
    assert listed[0]["grantee_group"]["instances"] == []


async def test_provider_fw_rules(db, admin, user):
    with pytest.raises(exceptions.AdminRequired):
        await db.provider_fw_rule_create(user, {"protocol": "tcp"})
    with pytest.raises(exceptions.AdminRequired):
        await db.provider_fw_rule_get_all(user)
    with pytest.raises(exceptions.AdminRequired):
        await db.provider_fw_rule_destroy(user, 1)
    r1 = await db.provider_fw_rule_create(admin, {"protocol": "tcp", "from_port": 1,
                                                  "to_port": 2, "cidr": "10.0.0.0/8"})
    assert r1["id"] > 0 and r1["protocol"] == "tcp" and r1["deleted"] is False
    r2 = await db.provider_fw_rule_create(admin, {"protocol": "udp", "cidr": "::/0"})
    assert await db.provider_fw_rule_get_all(admin) == [r1, r2]
    assert await db.provider_fw_rule_destroy(admin, r1["id"]) is None
    assert [r["id"] for r in await db.provider_fw_rule_get_all(admin)] == [r2["id"]]
    dead = (await db.provider_fw_rule_get_all(get_admin_context("only")))[0]
    assert dead["id"] == r1["id"] and dead["deleted_at"] is not None
    assert dead["updated_at"] is None
    assert await db.provider_fw_rule_destroy(admin, 4242) is None
    assert await db.provider_fw_rule_destroy(admin, "junk") is None
