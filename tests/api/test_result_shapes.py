"""Results as complete as Nova's objects (api-compute.md §1.5-1.6,
api-network-quota-storage.md §1.8, §5.6-5.7): what Nova's callers read off a result through
lazy loading is in every top-level row; nested rows keep their entry's shape; create and
update results echo every key of ``values``.  Through the client (RabbitMQ -> conductor ->
PostgreSQL) and on SQLite."""

import datetime as dt

from schemas.context import get_admin_context

YES = get_admin_context("yes")
MINE = {"project_id": "project1", "user_id": "user1"}


def _system(row):
    return {m["key"]: m["value"] for m in row["system_metadata"]}


async def test_every_function_returning_instances_carries_system_metadata(db, admin, user):
    past = dt.datetime(2000, 1, 1)
    inst = await db.instance_create(user, {**MINE, "host": "h1", "reservation_id": "r1",
                                           "launched_at": past,
                                           "system_metadata": {"image_os": "linux"}})
    uuid = inst["uuid"]
    assert _system(inst) == {"image_os": "linux"}
    await db.instance_update(admin, uuid, {"task_state": "rebooting", "updated_at": past})
    results = {
        "instance_get_by_uuid": [await db.instance_get_by_uuid(user, uuid)],
        "instance_get": [await db.instance_get(user, inst["id"])],
        "instance_get_all": await db.instance_get_all(admin),
        "instance_get_all(columns_to_join=[])": await db.instance_get_all(admin, []),
        "instance_get_all_by_filters": await db.instance_get_all_by_filters(admin, {}),
        "instance_get_all_by_host": await db.instance_get_all_by_host(admin, "h1"),
        "instance_get_all_by_project": await db.instance_get_all_by_project(admin,
                                                                             "project1"),
        "instance_get_all_by_reservation": await db.instance_get_all_by_reservation(
            admin, "r1"),
        "instance_get_active_by_window": await db.instance_get_active_by_window(admin,
                                                                                 past),
        "instance_get_active_by_window_joined":
            await db.instance_get_active_by_window_joined(admin, past),
        "instance_get_all_hung_in_rebooting":
            await db.instance_get_all_hung_in_rebooting(admin, 60),
        "instance_update": [await db.instance_update(user, uuid, {"vcpus": 2})],
        "instance_update_and_get_original": list(
            await db.instance_update_and_get_original(user, uuid, {"vcpus": 3})),
    }
    for name, rows in results.items():
        assert [r["uuid"] for r in rows] == [uuid] * len(rows) and rows, name
        assert all(_system(r) == {"image_os": "linux"} for r in rows), name
    # a write of system_metadata shows in the result it returns
    updated = await db.instance_update(user, uuid, {"system_metadata": {"a": "b"}})
    assert _system(updated) == {"a": "b"}
    gone = await db.instance_destroy(user, uuid)
    assert _system(gone) == {"a": "b"}


async def test_security_groups_always_carry_rules_and_instances(db, user):
    web = await db.security_group_create(user, {**MINE, "name": "web"})
    assert web["rules"] == [] and web["instances"] == []
    rule = await db.security_group_rule_create(user, {"parent_group_id": web["id"],
                                                      "protocol": "tcp", "from_port": 22,
                                                      "to_port": 22})
    inst = await db.instance_create(user, {**MINE, "security_groups": ["web"],
                                           "system_metadata": {"k": "v"}})
    created, default = await db.security_group_ensure_default(user)
    assert created is True
    results = {
        "security_group_get": [await db.security_group_get(user, web["id"])],
        "security_group_get_by_name": [await db.security_group_get_by_name(
            user, "project1", "web")],
        "security_group_get_all": await db.security_group_get_all(user),
        "security_group_get_by_project": await db.security_group_get_by_project(
            user, "project1"),
        "security_group_get_by_instance": await db.security_group_get_by_instance(
            user, inst["id"]),
    }
    for name, groups in results.items():
        found = {g["name"]: g for g in groups}
        assert [r["id"] for r in found["web"]["rules"]] == [rule["id"]], name
        assert [i["uuid"] for i in found["web"]["instances"]] == [inst["uuid"]], name
        # the instances nested in a group carry no further nesting
        assert "system_metadata" not in found["web"]["instances"][0], name
        assert "security_groups" not in found["web"]["instances"][0], name
    assert default["rules"] == [] and default["instances"] == []  # made, not linked
    # the groups nested in an instance keep their entry's shape: never instances
    got = await db.instance_get_by_uuid(user, inst["uuid"])
    assert all("instances" not in g for g in got["security_groups"])


async def test_rules_always_carry_their_grantee_group_with_its_instances(db, user):
    parent = await db.security_group_create(user, {**MINE, "name": "parent"})
    grantee = await db.security_group_create(user, {**MINE, "name": "grantee"})
    inst = await db.instance_create(user, {**MINE, "security_groups": ["grantee"]})
    granted = await db.security_group_rule_create(user, {"parent_group_id": parent["id"],
                                                         "group_id": grantee["id"],
                                                         "protocol": "tcp"})
    open_rule = await db.security_group_rule_create(user, {"parent_group_id": parent["id"],
                                                           "cidr": "0.0.0.0/0"})
    assert open_rule["grantee_group"] is None
    results = {
        "security_group_rule_create": granted,
        "security_group_rule_get": await db.security_group_rule_get(user, granted["id"]),
        "security_group_rule_get_by_security_group":
            (await db.security_group_rule_get_by_security_group(user, parent["id"]))[0],
        "security_group_rule_get_by_security_group_grantee":
            (await db.security_group_rule_get_by_security_group_grantee(
                user, grantee["id"]))[0],
    }
    for name, rule in results.items():
        group = rule["grantee_group"]
        assert group["id"] == grantee["id"], name
        assert [i["uuid"] for i in group["instances"]] == [inst["uuid"]], name
        assert "rules" not in group, name  # nested: only what the entry lists


async def test_creates_and_updates_echo_every_key_of_values(db, admin, user):
    pair = await db.key_pair_create(user, {"user_id": "user1", "name": "k",
                                           "public_key": "ssh-rsa x", "private_key": "x"})
    assert pair["private_key"] == "x"
    assert "private_key" not in await db.key_pair_get(user, "user1", "k")
    group = await db.security_group_create(user, {**MINE, "name": "g", "instances": []})
    assert group["instances"] == []
    service = await db.service_create(admin, {"host": "h", "topic": "compute",
                                              "note": "not a column"})
    assert service["note"] == "not a column"
    assert "note" not in await db.service_get(admin, service["id"])
    moved = await db.migration_create(admin, {"status": "migrating", "note": 1})
    again = await db.migration_update(admin, moved["id"], {"status": "done", "note": 5})
    assert again["note"] == 5 and again["status"] == "done"
    assert "note" not in await db.migration_get(admin, moved["id"])
    inst = await db.instance_create(user, {**MINE, "hint": [1, 2]})
    assert inst["hint"] == [1, 2]
    updated = await db.instance_update(user, inst["uuid"], {"hint": "z", "vcpus": "4"})
    assert updated["hint"] == "z" and updated["vcpus"] == "4"  # as given
    assert (await db.instance_get_by_uuid(user, inst["uuid"]))["vcpus"] == 4
