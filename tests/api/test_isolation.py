"""Isolation of user contexts (api-compute.md §1.1 "Isolation"): under the default
``strict`` mode a user context of project B reaching project A's rows finds nothing; under
``nova`` it sees what 2012.2 showed.  Through the client (RabbitMQ -> conductor ->
PostgreSQL) and on SQLite."""

import pytest

from schemas import exceptions

MINE = {"project_id": "project1", "user_id": "user1"}


@pytest.fixture(params=["strict", "nova"])
def isolation(db_config, request, monkeypatch):
    monkeypatch.setattr(db_config, "isolation", request.param)
    return request.param


async def _project_a(db, user):
    inst = await db.instance_create(user, {**MINE, "metadata": {"k": "v"},
                                           "system_metadata": {"s": "t"}})
    await db.block_device_mapping_create(user, {"instance_uuid": inst["uuid"],
                                                "device_name": "/dev/vdb"})
    group = await db.security_group_create(user, {**MINE, "name": "web"})
    rule = await db.security_group_rule_create(user, {"parent_group_id": group["id"],
                                                      "cidr": "0.0.0.0/0"})
    return inst, group, rule


async def test_reads_of_another_projects_rows(db, admin, user, other_user, isolation):
    inst, group, rule = await _project_a(db, user)
    strict = isolation == "strict"
    # owned through the instance
    assert await db.instance_metadata_get(other_user, inst["uuid"]) == \
        ({} if strict else {"k": "v"})
    assert await db.instance_system_metadata_get(other_user, inst["uuid"]) == \
        ({} if strict else {"s": "t"})
    mappings = await db.block_device_mapping_get_all_by_instance(other_user, inst["uuid"])
    assert len(mappings) == (0 if strict else 1)
    # the project's own security groups and rules
    mine = [g["id"] for g in await db.security_group_get_all(admin)]  # default and web
    assert group["id"] in mine
    seen = [g["id"] for g in await db.security_group_get_all(other_user)]
    assert seen == ([] if strict else mine)
    if strict:
        with pytest.raises(exceptions.SecurityGroupNotFoundForRule):
            await db.security_group_rule_get(other_user, rule["id"])
    else:
        assert (await db.security_group_rule_get(other_user, rule["id"]))["id"] == rule["id"]
    # the owner, admins and rows of no project are never restricted
    assert await db.instance_metadata_get(user, inst["uuid"]) == {"k": "v"}
    shared = await db.security_group_create(admin, {"name": "common"})
    assert shared["id"] in [g["id"] for g in await db.security_group_get_all(other_user)]
    # 2012.2's own scoping holds in both modes
    with pytest.raises(exceptions.InstanceNotFound):
        await db.instance_get_by_uuid(other_user, inst["uuid"])


async def test_answers_and_writes_about_another_projects_group(db, user, other_user,
                                                               isolation):
    inst, group, rule = await _project_a(db, user)
    await db.instance_add_security_group(user, inst["uuid"], group["id"])
    strict = isolation == "strict"
    assert await db.security_group_exists(other_user, "project1", "web") is not strict
    assert await db.security_group_in_use(other_user, group["id"]) is not strict
    assert await db.security_group_rule_count_by_group(other_user, group["id"]) == \
        (0 if strict else 1)
    opening = {"parent_group_id": group["id"], "protocol": "tcp", "from_port": 1,
               "to_port": 65535, "cidr": "0.0.0.0/0"}
    if strict:
        with pytest.raises(exceptions.SecurityGroupNotFound):
            await db.security_group_rule_create(other_user, opening)
        with pytest.raises(exceptions.NotAuthorized):
            await db.security_group_create(other_user, {**MINE, "name": "planted"})
        assert await db.security_group_destroy(other_user, group["id"]) is None
        # project A's group is unchanged: one rule, not deleted
        got = await db.security_group_get(user, group["id"])
        assert [r["id"] for r in got["rules"]] == [rule["id"]]
    else:
        await db.security_group_rule_create(other_user, opening)
        await db.security_group_destroy(other_user, group["id"])
        assert await db.security_group_exists(user, "project1", "web") is False


async def test_writes_about_another_projects_instance(db, user, other_user, isolation):
    inst, _, _ = await _project_a(db, user)
    uuid = inst["uuid"]
    await db.instance_info_cache_update(user, uuid, {"network_info": "[mine]"})
    strict = isolation == "strict"
    writes = [
        lambda: db.instance_metadata_update(other_user, uuid, {"k": "x"}, True),
        lambda: db.instance_metadata_delete(other_user, uuid, "k"),
        lambda: db.instance_system_metadata_update(other_user, uuid, {"s": "x"}, False),
        lambda: db.instance_info_cache_update(other_user, uuid, {"network_info": "[]"}),
        lambda: db.instance_info_cache_delete(other_user, uuid),
    ]
    for write in writes:
        if strict:
            with pytest.raises(exceptions.InstanceNotFound) as info:
                await write()
            assert info.value.kwargs["instance_id"] == uuid
        else:
            await write()
    seen = await db.instance_info_cache_get(other_user, uuid)
    assert (seen is None) if strict else seen["deleted"] is True
    # project A's rows are unchanged under strict isolation
    got = await db.instance_get_by_uuid(user, uuid)
    if strict:
        assert await db.instance_metadata_get(user, uuid) == {"k": "v"}
        assert await db.instance_system_metadata_get(user, uuid) == {"s": "t"}
        assert got["info_cache"]["network_info"] == "[mine]"
    # rows of an instance nobody has are not refused
    orphan = "00000000-0000-0000-0000-000000000000"
    await db.instance_metadata_update(other_user, orphan, {"a": "b"}, False)
    assert await db.instance_metadata_get(other_user, orphan) == {"a": "b"}
