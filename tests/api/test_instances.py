"""instance_* (api-compute.md §3.6) and the EC2 instance mappings (§3.12), through the
client (RabbitMQ -> conductor -> PostgreSQL) and on SQLite."""

import datetime as dt
import uuid

import pytest
from sqlalchemy import func, insert, select

from conductor.db.models import (
    FixedIp,
    FloatingIp,
    InstanceIdMapping,
    InstanceTypes,
    SecurityGroup,
    SecurityGroupIngressRule,
    SecurityGroupInstanceAssociation,
)
from schemas import exceptions
from schemas.conditions import constraint, equal_any, not_equal
from schemas.context import RequestContext, get_admin_context

LINKS = SecurityGroupInstanceAssociation.__table__
# instance_create does not fill these from the context (the compute API does)
MINE = {"project_id": "project1", "user_id": "user1"}


@pytest.fixture
def raw(_api_backend, db):
    """The engine behind ``db`` (already emptied), for rows no function of ours makes."""
    return _api_backend[0]


async def _insert(engine, model, **values):
    table = model.__table__
    async with engine.begin() as conn:
        result = await conn.execute(insert(table).values(**values).returning(table.c.id))
        return result.scalar_one()


async def _count(engine, stmt):
    async with engine.connect() as conn:
        return (await conn.execute(stmt)).scalar_one()


async def _group(engine, name, project_id="project1", rules=0):
    group_id = await _insert(engine, SecurityGroup, name=name, description=name,
                             user_id="user1", project_id=project_id)
    for port in range(rules):
        await _insert(engine, SecurityGroupIngressRule, parent_group_id=group_id,
                      protocol="tcp", from_port=port, to_port=port, cidr="0.0.0.0/0")
    return group_id


# --- create -----------------------------------------------------------------------------

async def test_create_returns_the_row_with_its_relationships(db, user):
    inst = await db.instance_create(user, {
        "project_id": "project1", "user_id": "user1", "host": "node1", "vcpus": 2,
        "metadata": {"a": "1", "n": 5}, "system_metadata": {"original_image_ref": "blah"},
        "info_cache": {"network_info": "[]"}, "security_groups": ["default"],
        "not_a_column": "ignored"})
    assert uuid.UUID(inst["uuid"]) and inst["id"] > 0
    assert inst["name"] == f"instance-{inst['id']:08x}"
    assert inst["created_at"] is not None and inst["updated_at"] is None
    assert inst["deleted"] is False and inst["deleted_at"] is None
    assert inst["shutdown_terminate"] is False and inst["locked"] is None
    # echoed as Nova's object kept it (api-compute.md §1.5), never stored
    assert inst["not_a_column"] == "ignored"
    assert "not_a_column" not in await db.instance_get_by_uuid(user, inst["uuid"])
    assert {m["key"]: m["value"] for m in inst["metadata"]} == {"a": "1", "n": 5}
    assert [(m["key"], m["value"]) for m in inst["system_metadata"]] == \
        [("original_image_ref", "blah")]
    assert inst["info_cache"]["network_info"] == "[]"
    assert inst["info_cache"]["instance_uuid"] == inst["uuid"]
    assert [(g["name"], g["project_id"]) for g in inst["security_groups"]] == \
        [("default", "project1")]
    # nested groups keep their entry's shape: no rules here, never instances
    assert not {"rules", "instances"} & set(inst["security_groups"][0])
    assert inst["instance_type"] is None
    # a later read shows the stored text, and the system metadata (api-compute.md §1.6)
    got = await db.instance_get_by_uuid(user, inst["uuid"])
    assert {m["key"]: m["value"] for m in got["metadata"]} == {"a": "1", "n": "5"}
    assert [(m["key"], m["value"]) for m in got["system_metadata"]] == \
        [("original_image_ref", "blah")]


async def test_create_makes_the_default_group_even_when_not_named(db, raw, user):
    first = await db.instance_create(user, {"project_id": "project1"})
    assert first["security_groups"] == []
    defaults = select(func.count()).select_from(SecurityGroup.__table__).where(
        SecurityGroup.__table__.c.name == "default")
    assert await _count(raw, defaults) == 1
    second = await db.instance_create(user, {"project_id": "project1",
                                             "security_groups": ["default"]})
    assert await _count(raw, defaults) == 1
    group = second["security_groups"][0]
    assert (group["user_id"], group["project_id"], group["description"]) == \
        ("user1", "project1", "default")


async def test_create_for_admin_uses_a_default_group_without_project(db, admin):
    inst = await db.instance_create(admin, {"security_groups": ["default"]})
    assert [(g["name"], g["project_id"], g["user_id"]) for g in inst["security_groups"]] == \
        [("default", None, None)]


async def test_create_links_named_groups_of_the_context_project_only(db, raw, user, admin):
    web = await _group(raw, "web")
    await _group(raw, "db", project_id="project2")
    inst = await db.instance_create(user, {**MINE, "security_groups": ["web", "default"]})
    assert sorted(g["name"] for g in inst["security_groups"]) == ["default", "web"]
    assert web in [g["id"] for g in inst["security_groups"]]
    with pytest.raises(exceptions.SecurityGroupNotFoundForProject) as info:
        await db.instance_create(user, {**MINE, "security_groups": ["web", "db", "nope"]})
    assert info.value.kwargs == {"project_id": "project1", "security_group_id": "db",
                                 "code": 404}
    # nothing of the failed call was kept
    assert len(await db.instance_get_all(admin)) == 1


async def test_create_stores_explicit_uuid_and_base_columns(db, admin):
    old = dt.datetime(2000, 1, 1, 12, 0, 0)
    wanted = str(uuid.uuid4())
    inst = await db.instance_create(admin, {"uuid": wanted, "updated_at": old,
                                            "created_at": old})
    assert inst["uuid"] == wanted
    got = await db.instance_get_by_uuid(admin, wanted)
    assert got["updated_at"] == old and got["created_at"] == old
    with pytest.raises(exceptions.DBError):
        await db.instance_create(admin, {"uuid": wanted})
    with pytest.raises(exceptions.InvalidInput):
        await db.instance_create(admin, {"vcpus": "many"})
    with pytest.raises(exceptions.InvalidInput):
        await db.instance_create(admin, {"metadata": ["a"]})


async def test_create_and_get_include_the_flavor_even_when_deleted(db, raw, admin):
    flavor = await _insert(raw, InstanceTypes, name="m1.tiny", memory_mb=512, vcpus=1,
                           root_gb=1, ephemeral_gb=0, flavorid="1", deleted=True)
    inst = await db.instance_create(admin, {"instance_type_id": flavor})
    assert inst["instance_type"]["name"] == "m1.tiny"
    assert (await db.instance_get(admin, inst["id"]))["instance_type"]["flavorid"] == "1"


async def test_create_makes_an_ec2_mapping(db, user):
    inst = await db.instance_create(user, dict(MINE))
    ec2_id = await db.get_ec2_instance_id_by_uuid(user, inst["uuid"])
    assert isinstance(ec2_id, int)
    assert await db.get_instance_uuid_by_ec2_id(user, ec2_id) == inst["uuid"]
    again = await db.ec2_instance_create(user, inst["uuid"])
    assert again["uuid"] == inst["uuid"] and again["id"] > ec2_id
    # the first mapping of a uuid wins
    assert await db.get_ec2_instance_id_by_uuid(user, inst["uuid"]) == ec2_id


async def test_ec2_lookups_not_found(db, user):
    for call, arg in ((db.get_ec2_instance_id_by_uuid, "fake"),
                      (db.get_instance_uuid_by_ec2_id, "fake"),
                      (db.get_instance_uuid_by_ec2_id, 424242),
                      (db.get_instance_uuid_by_ec2_id, 2**40),
                      (db.get_ec2_instance_id_by_uuid, {"not": "text"})):
        with pytest.raises(exceptions.InstanceNotFound) as info:
            await call(user, arg)
        assert info.value.kwargs == {"instance_id": arg, "code": 404}
        assert str(arg) in str(info.value)


async def test_data_get_for_project_counts_live_instances(db, admin):
    for values in ({"project_id": "p", "vcpus": 2, "memory_mb": 512},
                   {"project_id": "p", "vcpus": 4, "memory_mb": 1024, "vm_state": "error"},
                   {"project_id": "p", "vcpus": 8, "deleted": True},
                   {"project_id": "q", "vcpus": 1}):
        await db.instance_create(admin, values)
    result = await db.instance_data_get_for_project(admin, "p")
    assert result == (2, 6, 1536) and isinstance(result, tuple)
    assert await db.instance_data_get_for_project(admin, "none") == (0, 0, 0)
    assert await db.instance_data_get_for_project(admin, "p", session=None) == (2, 6, 1536)
    with pytest.raises(exceptions.InvalidRequest, match="in-process only"):
        await db.instance_data_get_for_project(admin, "p", session="mine")
    with pytest.raises(exceptions.AdminRequired):
        await db.instance_data_get_for_project(RequestContext("u", "p"), "p")


# --- reads ------------------------------------------------------------------------------

async def test_get_by_uuid_and_get_include_groups_with_rules(db, raw, user):
    web = await _group(raw, "web", rules=2)
    inst = await db.instance_create(user, {**MINE, "security_groups": ["web"],
                                           "metadata": {"k": "v"}})
    for got in (await db.instance_get_by_uuid(user, inst["uuid"]),
                await db.instance_get(user, inst["id"])):
        assert got["id"] == inst["id"] and got["name"] == inst["name"]
        assert [g["id"] for g in got["security_groups"]] == [web]
        assert [r["from_port"] for r in got["security_groups"][0]["rules"]] == [0, 1]
        assert got["info_cache"]["instance_uuid"] == inst["uuid"]
        assert [m["key"] for m in got["metadata"]] == ["k"]
        assert got["instance_type"] is None and got["system_metadata"] == []
        assert "instances" not in got["security_groups"][0]


async def test_get_errors_carry_the_argument(db, user):
    missing = str(uuid.uuid4())
    with pytest.raises(exceptions.InstanceNotFound) as info:
        await db.instance_get_by_uuid(user, missing)
    assert info.value.kwargs == {"instance_id": missing, "code": 404}
    for bad in (4242, "not-an-id", 2**40):
        with pytest.raises(exceptions.InstanceNotFound) as info:
            await db.instance_get(user, bad)
        assert info.value.kwargs == {"instance_id": bad, "code": 404}
    with pytest.raises(exceptions.InstanceNotFound):
        await db.instance_get_by_uuid(user, "x" * 100)


async def test_a_user_never_reaches_another_projects_instance(db, raw, user, other_user,
                                                              admin):
    inst = await db.instance_create(user, {"project_id": "project1", "task_state": None})
    group = await _group(raw, "mine", project_id="project2")
    u = inst["uuid"]
    for call in (db.instance_get_by_uuid(other_user, u),
                 db.instance_get(other_user, inst["id"]),
                 db.instance_update(other_user, u, {"host": "evil"}),
                 db.instance_update_and_get_original(other_user, u, {"host": "evil"}),
                 db.instance_destroy(other_user, u),
                 db.instance_test_and_set(other_user, u, "task_state", [None], "x"),
                 db.instance_add_security_group(other_user, u, group),
                 db.instance_remove_security_group(other_user, u, group),
                 db.instance_get_floating_address(other_user, inst["id"])):
        with pytest.raises(exceptions.InstanceNotFound):
            await call
    got = await db.instance_get_by_uuid(admin, u)
    assert got["host"] is None and got["deleted"] is False and got["task_state"] is None
    assert await db.instance_get_all_by_filters(other_user, {}) == []


async def test_read_deleted_no_yes_only(db, admin):
    live = await db.instance_create(admin, {})
    gone = await db.instance_create(admin, {})
    await db.instance_destroy(admin, gone["uuid"])
    with pytest.raises(exceptions.InstanceNotFound):
        await db.instance_get_by_uuid(admin, gone["uuid"])
    yes, only = get_admin_context("yes"), get_admin_context("only")
    dead = await db.instance_get_by_uuid(yes, gone["uuid"])
    assert dead["deleted"] is True and dead["security_groups"] == []
    assert (await db.instance_get(only, gone["id"]))["id"] == gone["id"]
    with pytest.raises(exceptions.InstanceNotFound):
        await db.instance_get(only, live["id"])
    assert [i["id"] for i in await db.instance_get_all(admin)] == [live["id"]]
    assert [i["id"] for i in await db.instance_get_all(yes)] == [live["id"], gone["id"]]
    assert [i["id"] for i in await db.instance_get_all(only)] == [gone["id"]]


async def test_get_all_is_admin_only_and_joins_what_is_asked(db, user, admin):
    await db.instance_create(user, {**MINE, "metadata": {"a": "b"}})
    with pytest.raises(exceptions.AdminRequired):
        await db.instance_get_all(user)
    [row] = await db.instance_get_all(admin)
    assert {"info_cache", "security_groups", "metadata", "instance_type"} <= set(row)
    assert row["system_metadata"] == []  # every instance result carries it
    [bare] = await db.instance_get_all(admin, [])
    assert not {"info_cache", "security_groups", "metadata", "instance_type"} & set(bare)
    assert bare["system_metadata"] == []
    assert bare["name"] == row["name"]
    [some] = await db.instance_get_all(admin, columns_to_join=["system_metadata"])
    assert some["system_metadata"] == [] and "metadata" not in some
    with pytest.raises(exceptions.InvalidInput):
        await db.instance_get_all(admin, ["bogus"])


async def test_by_host_project_reservation(db, user, admin):
    a = await db.instance_create(admin, {"host": "h1", "project_id": "p1",
                                         "reservation_id": "r-1"})
    b = await db.instance_create(admin, {"host": "h1", "project_id": "p2",
                                         "reservation_id": "r-1"})
    c = await db.instance_create(admin, {"host": "h10", "project_id": "p1"})
    await db.instance_destroy(admin, b["uuid"])
    ids = lambda rows: [r["id"] for r in rows]  # noqa: E731
    assert ids(await db.instance_get_all_by_host(admin, "h1")) == [a["id"]]
    assert ids(await db.instance_get_all_by_host(get_admin_context("yes"), "h1")) == \
        [a["id"], b["id"]]
    assert ids(await db.instance_get_all_by_project(admin, "p1")) == [a["id"], c["id"]]
    assert ids(await db.instance_get_all_by_reservation(admin, "r-1")) == [a["id"]]
    assert ids(await db.instance_get_all_by_reservation(get_admin_context("only"),
                                                        "r-1")) == [b["id"]]
    row = (await db.instance_get_all_by_host(admin, "h1"))[0]
    assert {"info_cache", "security_groups", "metadata", "instance_type"} <= set(row)
    for call in (db.instance_get_all_by_host(user, "h1"),
                 db.instance_get_all_by_project(user, "project1"),
                 db.instance_get_all_by_project(user, "p2"),
                 db.instance_get_all_by_reservation(user, "r-1"),
                 db.instance_get_all_by_host_and_not_type(user, "h1")):
        with pytest.raises(exceptions.NotAuthorized):
            await call


async def test_by_host_and_not_type_has_sql_semantics(db, admin):
    none = await db.instance_create(admin, {"host": "h"})
    one = await db.instance_create(admin, {"host": "h", "instance_type_id": 1})
    two = await db.instance_create(admin, {"host": "h", "instance_type_id": 2})
    await db.instance_create(admin, {"host": "other", "instance_type_id": 2})
    ids = lambda rows: [r["id"] for r in rows]  # noqa: E731
    assert ids(await db.instance_get_all_by_host_and_not_type(admin, "h")) == \
        [one["id"], two["id"]]
    assert ids(await db.instance_get_all_by_host_and_not_type(admin, "h", 1)) == [two["id"]]
    assert ids(await db.instance_get_all_by_host_and_not_type(admin, "h", "x")) == \
        [one["id"], two["id"]]
    assert none["instance_type_id"] is None


async def test_hung_in_rebooting(db, admin):
    assert await db.instance_get_all_hung_in_rebooting(admin, 10) == []
    old = dt.datetime(2000, 1, 1)
    hung = await db.instance_create(admin, {"task_state": "rebooting", "updated_at": old})
    await db.instance_create(admin, {"task_state": "rebooting",
                                     "updated_at": dt.datetime.now(dt.UTC)})
    await db.instance_create(admin, {"task_state": "rebooting"})  # updated_at NULL
    await db.instance_create(admin, {"task_state": None, "updated_at": old})
    gone = await db.instance_create(admin, {"task_state": "rebooting", "updated_at": old})
    await db.instance_destroy(admin, gone["uuid"])
    found = await db.instance_get_all_hung_in_rebooting(admin, 10)
    assert [i["id"] for i in found] == [hung["id"], gone["id"]]
    assert "metadata" not in found[0]
    with pytest.raises(exceptions.InvalidInput):
        await db.instance_get_all_hung_in_rebooting(admin, "soon")


async def test_active_by_window(db_config, db, user, admin, monkeypatch):
    # reads across projects as 2012.2 answers them (strict isolation: test_isolation.py)
    monkeypatch.setattr(db_config, "isolation", "nova")
    t = dt.datetime(2012, 6, 1)
    day = dt.timedelta(days=1)
    running = await db.instance_create(admin, {"launched_at": t - day, "host": "h1",
                                               "project_id": "project1"})
    ended_late = await db.instance_create(admin, {"launched_at": t - 2 * day,
                                                  "terminated_at": t + day,
                                                  "project_id": "p2", "host": "h2"})
    await db.instance_create(admin, {"launched_at": t - 3 * day,
                                     "terminated_at": t - 2 * day})
    future = await db.instance_create(admin, {"launched_at": t + 5 * day})
    never = await db.instance_create(admin, {})
    await db.instance_destroy(admin, ended_late["uuid"])
    ids = lambda rows: [r["id"] for r in rows]  # noqa: E731
    assert ids(await db.instance_get_active_by_window(user, t)) == \
        [running["id"], ended_late["id"], future["id"], never["id"]]
    assert ids(await db.instance_get_active_by_window(user, t, t + day)) == \
        [running["id"], ended_late["id"]]
    # an aware datetime is converted to naive UTC
    aware = (t + day).replace(tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert ids(await db.instance_get_active_by_window(user, t, aware)) == \
        [running["id"], ended_late["id"]]
    # no project check: a user may ask about any project
    assert ids(await db.instance_get_active_by_window(user, t, project_id="p2")) == \
        [ended_late["id"]]
    assert ids(await db.instance_get_active_by_window(user, t, host="h1")) == [running["id"]]
    plain = (await db.instance_get_active_by_window(user, t))[0]
    assert "metadata" not in plain and "info_cache" not in plain
    joined = await db.instance_get_active_by_window_joined(admin, t, t + day, "project1")
    assert ids(joined) == [running["id"]]
    assert {"info_cache", "security_groups", "metadata", "instance_type"} <= set(joined[0])
    with pytest.raises(exceptions.AdminRequired):
        await db.instance_get_active_by_window_joined(user, t)
    with pytest.raises(exceptions.InvalidInput):
        await db.instance_get_active_by_window(user, "yesterday")


async def test_floating_address(db, raw, user):
    inst = await db.instance_create(user, dict(MINE))
    with pytest.raises(exceptions.FixedIpNotFoundForInstance) as info:
        await db.instance_get_floating_address(user, inst["id"])
    assert info.value.kwargs == {"instance_uuid": inst["uuid"], "code": 404}
    await _insert(raw, FixedIp, address="10.0.0.9", instance_uuid=inst["uuid"],
                  deleted=True)
    first = await _insert(raw, FixedIp, address="10.0.0.2", instance_uuid=inst["uuid"])
    await _insert(raw, FixedIp, address="10.0.0.3", instance_uuid=inst["uuid"])
    assert await db.instance_get_floating_address(user, inst["id"]) is None
    await _insert(raw, FloatingIp, address="1.2.3.3", fixed_ip_id=first, deleted=True)
    await _insert(raw, FloatingIp, address="1.2.3.4", fixed_ip_id=first)
    await _insert(raw, FloatingIp, address="1.2.3.5", fixed_ip_id=first)
    assert await db.instance_get_floating_address(user, inst["id"]) == "1.2.3.4"
    yes = RequestContext("user1", "project1", read_deleted="yes")
    assert await db.instance_get_floating_address(yes, inst["id"]) == "1.2.3.3"
    with pytest.raises(exceptions.InstanceNotFound):
        await db.instance_get_floating_address(user, inst["id"] + 100)


# --- test_and_set -----------------------------------------------------------------------

async def test_test_and_set(db, user):
    inst = await db.instance_create(user, dict(MINE))
    assert await db.instance_test_and_set(user, inst["uuid"], "task_state", [None],
                                          "spawning") is None
    got = await db.instance_get_by_uuid(user, inst["uuid"])
    assert got["task_state"] == "spawning" and got["updated_at"] is not None
    with pytest.raises(exceptions.InstanceInvalidState) as info:
        await db.instance_test_and_set(user, inst["uuid"], "task_state", [None, "x"], "y")
    assert info.value.kwargs == {"attr": "task_state", "instance_uuid": inst["uuid"],
                                 "state": "spawning", "method": "instance_test_and_set",
                                 "code": 400}
    await db.instance_test_and_set(user, inst["uuid"], "task_state", ("spawning",), None)
    assert (await db.instance_get_by_uuid(user, inst["uuid"]))["task_state"] is None
    with pytest.raises(exceptions.InvalidUUID) as bad:
        await db.instance_test_and_set(user, "not-a-uuid", "task_state", [None], "x")
    assert str(bad.value) == "not-a-uuid"
    with pytest.raises(exceptions.InstanceNotFound):
        await db.instance_test_and_set(user, str(uuid.uuid4()), "task_state", [None], "x")
    with pytest.raises(exceptions.InvalidInput):
        await db.instance_test_and_set(user, inst["uuid"], "name", [None], "x")


# --- update -----------------------------------------------------------------------------

async def test_update_returns_the_full_row_and_moves_updated_at(db, raw, user):
    await _group(raw, "web", rules=1)
    inst = await db.instance_create(user, {**MINE, "vm_state": "building", "security_groups":
                                           ["web"]})
    same = await db.instance_update(user, inst["uuid"], {"vm_state": "building"})
    assert same["updated_at"] is None  # nothing changed, no UPDATE
    updated = await db.instance_update(user, inst["uuid"], {
        "vm_state": "active", "name": "cannot-set", "bogus": 1, "launch_index": "3"})
    assert updated["vm_state"] == "active" and updated["updated_at"] is not None
    assert updated["name"] == inst["name"] and updated["launch_index"] == "3"
    assert updated["security_groups"][0]["rules"][0]["protocol"] == "tcp"
    assert {"info_cache", "metadata", "instance_type"} <= set(updated)
    got = await db.instance_get_by_uuid(user, inst["uuid"])
    assert got["launch_index"] == 3 and got["vm_state"] == "active"
    with pytest.raises(exceptions.InvalidUUID) as bad:
        await db.instance_update(user, "nope", {})
    assert str(bad.value) == "nope" and bad.value.kwargs == {"code": 400}
    with pytest.raises(exceptions.InstanceNotFound):
        await db.instance_update(user, str(uuid.uuid4()), {"host": "x"})
    with pytest.raises(exceptions.InvalidInput):
        await db.instance_update(user, inst["uuid"], {"vcpus": "lots"})


async def test_update_replaces_metadata_and_system_metadata(db, user):
    inst = await db.instance_create(user, {**MINE, "metadata": {"host": "foo", "gone": "x"},
                                           "system_metadata": {"original_image_ref":
                                                               "blah", "other": "y"}})
    updated = await db.instance_update(user, inst["uuid"], {
        "metadata": {"host": "bar", "new": 7},
        "system_metadata": {"original_image_ref": "baz"}})
    assert await db.instance_metadata_get(user, inst["uuid"]) == {"host": "bar", "new": "7"}
    assert await db.instance_system_metadata_get(user, inst["uuid"]) == \
        {"original_image_ref": "baz"}
    assert {m["key"]: m["value"] for m in updated["metadata"]} == {"host": "bar", "new": 7}
    assert updated["updated_at"] is None  # metadata alone does not touch the instance
    cleared = await db.instance_update(user, inst["uuid"], {"metadata": {}})
    assert cleared["metadata"] == []
    assert await db.instance_metadata_get(user, inst["uuid"]) == {}


async def test_update_with_a_new_flavor_returns_it(db, raw, admin):
    small = await _insert(raw, InstanceTypes, name="small", flavorid="1")
    big = await _insert(raw, InstanceTypes, name="big", flavorid="2")
    inst = await db.instance_create(admin, {"instance_type_id": small})
    updated = await db.instance_update(admin, inst["uuid"], {"instance_type_id": big})
    assert updated["instance_type"]["name"] == "big"


async def test_update_expected_task_state(db, user):
    inst = await db.instance_create(user, {**MINE, "task_state": "spawning"})
    with pytest.raises(exceptions.UnexpectedTaskStateError) as info:
        await db.instance_update(user, inst["uuid"], {"expected_task_state": None,
                                                      "task_state": "x"})
    assert info.value.kwargs == {"actual": "spawning", "expected": (None,), "code": 500}
    with pytest.raises(exceptions.UnexpectedTaskStateError) as info:
        await db.instance_update(user, inst["uuid"], {"expected_task_state": ["a", "b"]})
    assert info.value.kwargs["expected"] == ["a", "b"]
    assert (await db.instance_get_by_uuid(user, inst["uuid"]))["task_state"] == "spawning"
    done = await db.instance_update(user, inst["uuid"], {
        "expected_task_state": ("rebooting", "spawning"), "task_state": None})
    assert done["task_state"] is None and "expected_task_state" not in done


async def test_update_and_get_original(db, user):
    inst = await db.instance_create(user, {**MINE, "vm_state": "building", "metadata": {"a": "1"}})
    result = await db.instance_update_and_get_original(
        user, inst["uuid"], {"vm_state": "needscoffee", "metadata": {"b": "2"}})
    assert isinstance(result, tuple) and len(result) == 2
    old, new = result
    assert old["vm_state"] == "building" and new["vm_state"] == "needscoffee"
    assert old["updated_at"] is None and new["updated_at"] is not None
    assert [m["key"] for m in old["metadata"]] == ["a"]
    assert [m["key"] for m in new["metadata"]] == ["b"]
    assert old["security_groups"] == new["security_groups"]
    assert old["name"] == new["name"] == inst["name"]
    with pytest.raises(exceptions.UnexpectedTaskStateError):
        await db.instance_update_and_get_original(user, inst["uuid"], {
            "expected_task_state": "deleting", "vm_state": "x"})


async def test_update_of_a_deleted_instance(db, admin):
    inst = await db.instance_create(admin, {})
    await db.instance_destroy(admin, inst["uuid"])
    with pytest.raises(exceptions.InstanceNotFound):
        await db.instance_update(admin, inst["uuid"], {"host": "x"})
    revived = await db.instance_update(get_admin_context("yes"), inst["uuid"],
                                       {"host": "x"})
    assert revived["host"] == "x" and revived["deleted"] is True


# --- destroy ----------------------------------------------------------------------------

async def test_destroy_soft_deletes_instance_links_and_cache(db, raw, user):
    await _group(raw, "web")
    inst = await db.instance_create(user, {**MINE, "security_groups": ["web", "default"],
                                           "metadata": {"k": "v"},
                                           "system_metadata": {"s": "t"}})
    gone = await db.instance_destroy(user, inst["uuid"])
    assert gone["deleted"] is True and gone["deleted_at"] is not None
    assert gone["updated_at"] is None  # a bulk soft delete keeps updated_at
    assert len(gone["security_groups"]) == 2  # as loaded before the delete
    assert gone["info_cache"]["deleted"] is True
    with pytest.raises(exceptions.InstanceNotFound):
        await db.instance_get_by_uuid(user, inst["uuid"])
    live_links = select(func.count()).select_from(LINKS).where(
        LINKS.c.instance_uuid == inst["uuid"], LINKS.c.deleted == False)  # noqa: E712
    assert await _count(raw, live_links) == 0
    cache = await db.instance_info_cache_get(user, inst["uuid"])
    assert cache["deleted"] is True and cache["updated_at"] is not None
    # metadata, system metadata and the EC2 mapping are untouched
    assert await db.instance_metadata_get(user, inst["uuid"]) == {"k": "v"}
    assert await db.instance_system_metadata_get(user, inst["uuid"]) == {"s": "t"}
    assert await db.get_ec2_instance_id_by_uuid(user, inst["uuid"]) > 0


async def test_destroy_again_with_read_deleted_yes(db, admin):
    inst = await db.instance_create(admin, {})
    first = await db.instance_destroy(admin, inst["uuid"])
    with pytest.raises(exceptions.InstanceNotFound):
        await db.instance_destroy(admin, inst["uuid"])
    second = await db.instance_destroy(get_admin_context("yes"), inst["uuid"])
    assert second["deleted"] is True and second["deleted_at"] >= first["deleted_at"]


async def test_destroy_constraints(db, admin):
    ok = await db.instance_create(admin, {"vm_state": "error", "task_state": "deleting"})
    assert (await db.instance_destroy(admin, ok["uuid"],
                                      constraint(vm_state=equal_any("error"))))["deleted"]
    cases = [
        ({"vm_state": "resize"}, constraint(vm_state=equal_any("active", "error")), False),
        ({"vm_state": "error"}, constraint(vm_state=equal_any("active", "error")), True),
        ({"task_state": "deleting"}, constraint(task_state=not_equal("error", "resize")),
         True),
        ({"vm_state": "active"}, constraint(vm_state=not_equal("active", "error")), False),
        ({"task_state": None}, constraint(task_state=not_equal("error")), False),
        ({"task_state": None}, constraint(task_state=equal_any("error")), False),
        ({"vm_state": "error", "task_state": None},
         constraint(vm_state=equal_any("error"), task_state=not_equal("x")), False),
        ({"vm_state": "error", "task_state": "y"},
         constraint(vm_state=equal_any("error"), task_state=not_equal("x")), True),
    ]
    for values, cond, destroyed in cases:
        inst = await db.instance_create(admin, dict(values, metadata={"k": "v"}))
        if destroyed:
            assert (await db.instance_destroy(admin, inst["uuid"], cond))["deleted"], cond
            continue
        with pytest.raises(exceptions.ConstraintNotMet) as info:
            await db.instance_destroy(admin, inst["uuid"], cond)
        assert info.value.kwargs == {"code": 412}
        still = await db.instance_get_by_uuid(admin, inst["uuid"])
        assert still["deleted"] is False and still["info_cache"]["deleted"] is False, cond
    with pytest.raises(exceptions.InvalidInput):
        await db.instance_destroy(admin, inst["uuid"], constraint(bogus=equal_any(1)))
    with pytest.raises(exceptions.InvalidUUID):
        await db.instance_destroy(admin, "fake")


# --- security groups --------------------------------------------------------------------

async def test_add_and_remove_security_group(db, raw, user):
    inst = await db.instance_create(user, dict(MINE))
    web = await _group(raw, "web")
    theirs = await _group(raw, "theirs", project_id="project2")
    assert await db.instance_add_security_group(user, inst["uuid"], web) is None
    await db.instance_add_security_group(user, inst["uuid"], web)
    links = select(func.count()).select_from(LINKS).where(
        LINKS.c.instance_uuid == inst["uuid"], LINKS.c.deleted == False)  # noqa: E712
    assert await _count(raw, links) == 2  # no check for an existing link
    got = await db.instance_get_by_uuid(user, inst["uuid"])
    assert [g["id"] for g in got["security_groups"]] == [web, web]
    for group_id in (theirs, 9999, "web"):
        with pytest.raises(exceptions.SecurityGroupNotFound) as info:
            await db.instance_add_security_group(user, inst["uuid"], group_id)
        assert info.value.kwargs == {"security_group_id": group_id, "code": 404}
    assert await db.instance_remove_security_group(user, inst["uuid"], web) is None
    assert await _count(raw, links) == 0
    assert (await db.instance_get_by_uuid(user, inst["uuid"]))["security_groups"] == []
    assert await db.instance_remove_security_group(user, inst["uuid"], 9999) is None
    with pytest.raises(exceptions.InstanceNotFound):
        await db.instance_add_security_group(user, str(uuid.uuid4()), web)


async def test_ec2_mapping_rows(db, raw, user):
    row = await db.ec2_instance_create(user, "any-uuid-at-all")
    assert row["uuid"] == "any-uuid-at-all" and row["deleted"] is False
    total = select(func.count()).select_from(InstanceIdMapping.__table__)
    assert await _count(raw, total) == 1
    with pytest.raises(exceptions.NotAuthorized):
        await db.ec2_instance_create(RequestContext(None, None), "x")
