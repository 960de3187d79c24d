"""The isolation matrix (api-compute.md §1.1 "Isolation"), generated from the catalog:
every function a user context may call that takes a key of a project-owned row (an id,
uuid, name, address or project) is listed in ``MATRIX`` (checked here) or in ``PENDING``
(functions whose strict isolation is not written yet).  A user context of project B given
project A's key gets the outcome the spec names, and A's rows are unchanged afterwards.
Through the client (RabbitMQ -> conductor -> PostgreSQL) and on SQLite."""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest

from schemas import exceptions
from schemas.catalog import FUNCTIONS

A = {"project_id": "project1", "user_id": "user1"}
PERIOD = datetime.datetime(2012, 9, 27)

# parameters that name a project-owned row, or the project itself
KEYS = {"instance_uuid", "instance_id", "uuid", "uuids", "instance_uuids", "volume_id",
        "snapshot_id", "security_group_id", "group_id", "group_name",
        "security_group_rule_id", "rule_id", "project_id", "address", "fixed_address",
        "floating_address", "fixed_ip_id", "vif_id", "vif_uuid", "console_id", "ec2_id",
        "instance_ec2_id", "bdm_id", "network_id", "network_uuids", "flavor_id", "id"}


@dataclass(frozen=True)
class Case:
    """``args``: the call's arguments after the context; a string starting with ``$``
    is the key of A's seeded row of that name.  ``strict``: an exception class (the
    call raises it) or the value returned."""

    family: str
    args: tuple[Any, ...]
    strict: Any
    kwargs: dict[str, Any] = field(default_factory=dict)


def _family(name: str, cases: dict[str, tuple[Any, ...]]) -> dict[str, Case]:
    return {fn: Case(name, *spec) for fn, spec in cases.items()}


_NOT_FOUND = exceptions.InstanceNotFound
MATRIX: dict[str, Case] = {
    **_family("instance", {
        "instance_metadata_get": (("$uuid",), {}),
        "instance_system_metadata_get": (("$uuid",), {}),
        "instance_info_cache_get": (("$uuid",), None),
        "instance_metadata_update": (("$uuid", {"k": "x"}, True), _NOT_FOUND),
        "instance_metadata_delete": (("$uuid", "k"), _NOT_FOUND),
        "instance_system_metadata_update": (("$uuid", {"s": "x"}, False), _NOT_FOUND),
        "instance_system_metadata_delete": (("$uuid", "s"), _NOT_FOUND),
        "instance_info_cache_update": (("$uuid", {"network_info": "[]"}), _NOT_FOUND),
        "instance_info_cache_delete": (("$uuid",), _NOT_FOUND),
        "instance_get_by_uuid": (("$uuid",), _NOT_FOUND),
        "instance_get": (("$instance_id",), _NOT_FOUND),
        "instance_update": (("$uuid", {"host": "evil"}), _NOT_FOUND),
        "instance_update_and_get_original": (("$uuid", {"host": "evil"}), _NOT_FOUND),
        "instance_destroy": (("$uuid",), _NOT_FOUND),
        "block_device_mapping_get_all_by_instance": (("$uuid",), []),
    }),
    **_family("security_group", {
        "security_group_get": (("$group",), exceptions.SecurityGroupNotFound),
        "security_group_get_by_project": (("$project",), exceptions.NotAuthorized),
        "security_group_get_by_name": (("$project", "web"), exceptions.NotAuthorized),
        "security_group_count_by_project": (("$project",), exceptions.NotAuthorized),
        "security_group_exists": (("$project", "web"), False),
        "security_group_in_use": (("$group",), False),
        "security_group_rule_count_by_group": (("$group",), 0),
        "security_group_rule_get": (("$rule",), exceptions.SecurityGroupNotFoundForRule),
        "security_group_rule_get_by_security_group": (("$group",), []),
        "security_group_rule_get_by_security_group_grantee": (("$group",), []),
        "security_group_destroy": (("$group",), None),
        "security_group_rule_destroy": (("$rule",), exceptions.SecurityGroupNotFoundForRule),
    }),
    **_family("floating_ip", {
        # the floating-IP entries' own owner check stands (NotAuthorized)
        "floating_ip_get_by_address": (("$floating",), exceptions.NotAuthorized),
        "floating_ip_destroy": (("$floating",), exceptions.NotAuthorized),
        "floating_ip_deallocate": (("$floating",), exceptions.NotAuthorized),
        "floating_ip_disassociate": (("$floating",), exceptions.NotAuthorized),
        "floating_ip_set_auto_assigned": (("$floating",), exceptions.NotAuthorized),
        "floating_ip_update": (("$floating", {"host": "evil"}), exceptions.NotAuthorized),
        "floating_ip_get": (("$floating_id",), exceptions.FloatingIpNotFound),
        "floating_ip_get_all_by_project": (("$project",), exceptions.NotAuthorized),
        "floating_ip_count_by_project": (("$project",), exceptions.NotAuthorized),
        "floating_ip_allocate_address": (("$project", "nova"), exceptions.NotAuthorized),
    }),
    **_family("instance_more", {
        "instance_add_security_group": (("$uuid", "$group"), _NOT_FOUND),
        "instance_remove_security_group": (("$uuid", "$group"), _NOT_FOUND),
        "instance_get_floating_address": (("$instance_id",), _NOT_FOUND),
        "instance_test_and_set": (("$uuid", "task_state", [None], "evil"), _NOT_FOUND),
        "security_group_get_by_instance": (("$instance_id",), []),
        "block_device_mapping_destroy": (("$bdm",), None),
        "block_device_mapping_update": (("$bdm", {"device_name": "/dev/evil"}), None),
        "block_device_mapping_destroy_by_instance_and_device": (("$uuid", "/dev/vdb"), None),
        "block_device_mapping_destroy_by_instance_and_volume": (("$uuid", "$volume"), None),
        "bw_usage_get_by_uuids": ((["$uuid"], "$period"), []),
        "get_ec2_instance_id_by_uuid": (("$uuid",), _NOT_FOUND),
        "ec2_instance_create": (("$uuid",), _NOT_FOUND),
        "bw_usage_update": (("$uuid", "$vif_address", "$period", 9, 9), _NOT_FOUND),
        "get_instance_uuid_by_ec2_id": (("$instance_ec2",), _NOT_FOUND),
    }),
    **_family("network", {
        # the fixed-IP entries' own owner check stands (NotAuthorized)
        "fixed_ip_get": (("$fixed_id",), exceptions.NotAuthorized),
        "fixed_ip_get_by_address": (("$fixed",), exceptions.NotAuthorized),
        "fixed_ip_disassociate": (("$fixed",), exceptions.NotAuthorized),
        "fixed_ip_update": (("$fixed", {"host": "evil"}), exceptions.NotAuthorized),
        "fixed_ip_get_by_instance": (("$uuid",), exceptions.FixedIpNotFoundForInstance),
        "fixed_ips_by_virtual_interface": (("$vif",), []),
        "floating_ip_get_by_fixed_address": (("$fixed",), exceptions.NotAuthorized),
        "floating_ip_get_by_fixed_ip_id": (("$fixed_id",), []),
        "floating_ip_fixed_ip_associate": (("$floating", "$fixed", "evil"),
                                           exceptions.NotAuthorized),
        "network_get": (("$network", False), exceptions.NetworkNotFound),
        "network_get_all_by_uuids": ((["$network_uuid"], False), exceptions.NoNetworksFound),
        "network_update": (("$network", {"host": "evil"}), exceptions.NetworkNotFound),
        "virtual_interface_get": (("$vif",), None),
        "virtual_interface_get_by_address": (("$vif_address",), None),
        "virtual_interface_get_by_uuid": (("$vif_uuid",), None),
        "virtual_interface_get_by_instance": (("$uuid",), _NOT_FOUND),
        "virtual_interface_get_by_instance_and_network": (("$uuid", "$network"), None),
        "virtual_interface_delete": (("$vif",), None),
        "virtual_interface_delete_by_instance": (("$uuid",), _NOT_FOUND),
    }),
    **_family("storage", {
        "volume_get": (("$volume",), exceptions.VolumeNotFound),
        "volume_update": (("$volume", {"host": "evil"}), exceptions.VolumeNotFound),
        "volume_metadata_get": (("$volume",), exceptions.VolumeNotFound),
        "volume_metadata_update": (("$volume", {"k": "x"}, True), exceptions.VolumeNotFound),
        "volume_metadata_delete": (("$volume", "k"), exceptions.VolumeNotFound),
        "snapshot_get": (("$snapshot",), exceptions.SnapshotNotFound),
        "snapshot_update": (("$snapshot", {"status": "evil"}), exceptions.SnapshotNotFound),
        "snapshot_get_all_for_volume": (("$volume",), []),
        "get_ec2_volume_id_by_uuid": (("$volume",), exceptions.VolumeNotFound),
        "get_volume_uuid_by_ec2_id": (("$volume_ec2",), exceptions.VolumeNotFound),
        "get_ec2_snapshot_id_by_uuid": (("$snapshot",), exceptions.SnapshotNotFound),
        "ec2_volume_create": (("$volume",), exceptions.VolumeNotFound),
        "ec2_snapshot_create": (("$snapshot",), exceptions.SnapshotNotFound),
        "get_snapshot_uuid_by_ec2_id": (("$snapshot_ec2",), exceptions.SnapshotNotFound),
    }),
    **_family("flavor", {
        "instance_type_get": (("$flavor_id",), exceptions.InstanceTypeNotFound),
        "instance_type_get_by_flavor_id": (("$flavorid",), exceptions.FlavorNotFound),
        "instance_type_extra_specs_get": (("$flavorid",), {}),
        "instance_type_extra_specs_delete": (("$flavorid", "k"), None),
        "instance_type_extra_specs_update_or_create": (("$flavorid", {"k": "x"}),
                                                       exceptions.FlavorNotFound),
    }),
    **_family("project", {
        # a project_id argument of another project is refused (the project check)
        "instance_get_active_by_window": ((None, None, "$project"), exceptions.NotAuthorized),
        "volume_get_active_by_window": ((None, None, "$project"), exceptions.NotAuthorized),
        "quota_get": (("$project", "instances"), exceptions.NotAuthorized),
        "quota_usage_get": (("$project", "instances"), exceptions.NotAuthorized),
        "project_get_networks": (("$project",), exceptions.NotAuthorized),
        "quota_get_all_by_project": (("$project",), exceptions.NotAuthorized),
        "quota_usage_get_all_by_project": (("$project",), exceptions.NotAuthorized),
        "reservation_get_all_by_project": (("$project",), exceptions.NotAuthorized),
        "snapshot_get_all_by_project": (("$project",), exceptions.NotAuthorized),
        "volume_get_all_by_project": (("$project",), exceptions.NotAuthorized),
        "reservation_get": (("$reservation",), exceptions.ReservationNotFound),
    }),
}

# Functions whose strict isolation is not written yet (none left): a new keyed function
# goes into MATRIX, or here with the reason it is not isolated yet.
PENDING: set[str] = set()

# keyed by rows of no project: operators' configuration keeps its entry's checks
OPERATOR = {"volume_type_get", "database_snapshot_get_by_provider_id",
            # declared only in 2012.2: NotImplementedError for every caller, reads nothing
            "volume_get_by_ec2_id"}


def _keyed() -> set[str]:
    """Catalog functions a user context may call that take a key of a project-owned row
    (admin-only functions refuse user contexts before any row is read)."""
    return {f.name for f in FUNCTIONS
            if f.access == "any" and f.kind != "local" and any(p.name in KEYS for p in f.params)}


def test_matrix_covers_every_keyed_function() -> None:
    keyed = _keyed()
    assert keyed - MATRIX.keys() - PENDING - OPERATOR == set(), "add them to MATRIX"
    assert MATRIX.keys() | PENDING | OPERATOR <= keyed
    assert not MATRIX.keys() & PENDING and not (MATRIX.keys() | PENDING) & OPERATOR


async def _seed(db: Any, admin: Any, user: Any) -> dict[str, Any]:
    inst = await db.instance_create(user, {**A, "metadata": {"k": "v"},
                                           "system_metadata": {"s": "t"}})
    await db.instance_info_cache_update(user, inst["uuid"], {"network_info": "[mine]"})
    await db.block_device_mapping_create(user, {"instance_uuid": inst["uuid"],
                                                "device_name": "/dev/vdb"})
    group = await db.security_group_create(user, {**A, "name": "web"})
    rule = await db.security_group_rule_create(user, {"parent_group_id": group["id"],
                                                      "cidr": "10.0.0.0/8"})
    await db.instance_add_security_group(user, inst["uuid"], group["id"])
    network = await db.network_create_safe(admin, {"project_id": "project1",
                                                   "uuid": str(uuid.uuid4())})
    vif = await db.virtual_interface_create(user, {"address": "fa:16:3e:00:00:01",
                                                   "uuid": str(uuid.uuid4()),
                                                   "instance_uuid": inst["uuid"],
                                                   "network_id": network["id"]})
    fixed = await db.fixed_ip_create(admin, {"address": "10.0.0.5",
                                             "instance_uuid": inst["uuid"],
                                             "network_id": network["id"],
                                             "virtual_interface_id": vif["id"]})
    fixed_id = (await db.fixed_ip_get_by_address(admin, fixed))["id"]
    address = await db.floating_ip_create(admin, {"address": "192.0.2.7", "pool": "nova",
                                                  "project_id": "project1",
                                                  "fixed_ip_id": fixed_id})
    floating = await db.floating_ip_get_by_address(admin, address)
    volume = await db.volume_create(user, {**A, "metadata": {"k": "v"}})
    snapshot = await db.snapshot_create(user, {**A, "volume_id": volume["id"]})
    await db.block_device_mapping_create(user, {"instance_uuid": inst["uuid"],
                                                "device_name": "/dev/vdc",
                                                "volume_id": volume["id"]})
    bdm = [m for m in await db.block_device_mapping_get_all_by_instance(admin, inst["uuid"])
           if m["device_name"] == "/dev/vdc"][0]
    await db.bw_usage_update(user, inst["uuid"], vif["address"], PERIOD, 1, 2)
    flavor = await db.instance_type_create(admin, {
        "name": "private", "flavorid": "p1", "memory_mb": 512, "vcpus": 1, "root_gb": 1,
        "ephemeral_gb": 0, "is_public": False, "extra_specs": {"k": "v"}})
    await db.instance_type_access_add(admin, "p1", "project1")
    usage = await db.quota_usage_create(admin, "project1", "instances", 1, 1, None)
    reservation = str(uuid.uuid4())
    await db.reservation_create(admin, reservation, usage, "project1", "instances", 1,
                                PERIOD + datetime.timedelta(days=3650))
    return {"uuid": inst["uuid"], "instance_id": inst["id"], "group": group["id"],
            "rule": rule["id"], "floating": address, "floating_id": floating["id"],
            "project": "project1", "network": network["id"],
            "network_uuid": network["uuid"], "vif": vif["id"], "vif_uuid": vif["uuid"],
            "vif_address": vif["address"], "fixed": fixed, "fixed_id": fixed_id,
            "volume": volume["id"], "snapshot": snapshot["id"], "bdm": bdm["id"],
            "period": PERIOD, "reservation": reservation, "flavor_id": flavor["id"],
            "flavorid": "p1",
            "instance_ec2": await db.get_ec2_instance_id_by_uuid(user, inst["uuid"]),
            "volume_ec2": (await db.ec2_volume_create(user, volume["id"]))["id"],
            "snapshot_ec2": (await db.ec2_snapshot_create(user, snapshot["id"]))["id"]}


async def _snapshot(db: Any, admin: Any, keys: dict[str, Any]) -> dict[str, Any]:
    """A's rows as an admin reads them."""
    deleted = admin.elevated(read_deleted="yes")
    return {
        "instance": await db.instance_get_by_uuid(deleted, keys["uuid"]),
        "metadata": await db.instance_metadata_get(deleted, keys["uuid"]),
        "system_metadata": await db.instance_system_metadata_get(deleted, keys["uuid"]),
        "info_cache": await db.instance_info_cache_get(deleted, keys["uuid"]),
        "bdms": await db.block_device_mapping_get_all_by_instance(deleted, keys["uuid"]),
        "group": await db.security_group_get(deleted, keys["group"]),
        "floating": await db.floating_ip_get_by_address(deleted, keys["floating"]),
        "fixed": await db.fixed_ip_get(deleted, keys["fixed_id"]),
        "network": await db.network_get(deleted, keys["network"]),
        "vifs": await db.virtual_interface_get_by_instance(deleted, keys["uuid"]),
        "volume": await db.volume_get(deleted, keys["volume"]),
        "snapshot": await db.snapshot_get(deleted, keys["snapshot"]),
        "bw": await db.bw_usage_get_by_uuids(deleted, [keys["uuid"]], keys["period"]),
        "flavor": await db.instance_type_get(deleted, keys["flavor_id"]),
        "reservation": await db.reservation_get(deleted, keys["reservation"]),
        "ec2": [await db.get_ec2_instance_id_by_uuid(deleted, keys["uuid"]),
                await db.get_ec2_volume_id_by_uuid(deleted, keys["volume"]),
                await db.get_ec2_snapshot_id_by_uuid(deleted, keys["snapshot"])],
    }


def _resolve(args: Any, keys: dict[str, Any]) -> Any:
    if isinstance(args, (list, tuple)):
        return [_resolve(a, keys) for a in args]
    return keys[args[1:]] if isinstance(args, str) and args.startswith("$") else args


@pytest.mark.parametrize("family", sorted({c.family for c in MATRIX.values()}))
async def test_strict_user_of_b_given_keys_of_a(db, admin, user, other_user, family):
    keys = await _seed(db, admin, user)
    before = await _snapshot(db, admin, keys)
    wrong = []
    for name, case in sorted(MATRIX.items()):
        if case.family != family:
            continue
        call = getattr(db, name)(other_user, *_resolve(case.args, keys), **case.kwargs)
        if isinstance(case.strict, type) and issubclass(case.strict, Exception):
            try:
                got = await call
            except case.strict:
                continue
            except exceptions.NovaException as error:
                wrong.append((name, f"raised {error!r}"))
                continue
            wrong.append((name, f"returned {got!r}"))
        else:
            try:
                got = await call
            except exceptions.NovaException as error:
                wrong.append((name, f"raised {error!r}"))
                continue
            if got != case.strict:
                wrong.append((name, f"returned {got!r}"))
    assert not wrong, "\n".join(f"{name}: {what[:120]}" for name, what in wrong)
    assert await _snapshot(db, admin, keys) == before


async def test_nova_mode_keeps_2012_2_answers(db, admin, user, other_user, db_config,
                                              monkeypatch):
    monkeypatch.setattr(db_config, "isolation", "nova")
    keys = await _seed(db, admin, user)
    assert await db.instance_metadata_get(other_user, keys["uuid"]) == {"k": "v"}
    assert await db.instance_system_metadata_get(other_user, keys["uuid"]) == {"s": "t"}
    assert len(await db.block_device_mapping_get_all_by_instance(other_user,
                                                                 keys["uuid"])) == 2
    assert await db.security_group_exists(other_user, "project1", "web") is True
    assert await db.security_group_in_use(other_user, keys["group"]) is True
    assert await db.security_group_rule_count_by_group(other_user, keys["group"]) == 1
    # 2012.2's floating_ip_bulk_destroy deleted any project's address
    await db.floating_ip_bulk_destroy(other_user, [{"address": keys["floating"]}])
    with pytest.raises(exceptions.FloatingIpNotFoundForAddress):
        await db.floating_ip_get_by_address(admin, keys["floating"])


async def test_strict_bulk_destroy_leaves_another_projects_address(db, admin, user,
                                                                   other_user):
    keys = await _seed(db, admin, user)
    before = await db.floating_ip_get_by_address(admin, keys["floating"])
    await db.floating_ip_bulk_destroy(other_user, [{"address": keys["floating"]}])
    assert await db.floating_ip_get_by_address(admin, keys["floating"]) == before
    # the caller's own and unallocated addresses are still destroyed
    free = await db.floating_ip_create(admin, {"address": "192.0.2.8", "pool": "nova"})
    await db.floating_ip_bulk_destroy(other_user, [{"address": free}])
    with pytest.raises(exceptions.FloatingIpNotFoundForAddress):
        await db.floating_ip_get_by_address(admin, free)


async def test_strict_user_cannot_create_rows_in_another_project(db, admin, other_user):
    creates = {
        "instance_create": (A, exceptions.NotAuthorized),
        "volume_create": (A, exceptions.NotAuthorized),
        "snapshot_create": (A, exceptions.NotAuthorized),
        "floating_ip_create": ({"address": "192.0.2.9", "project_id": "project1"},
                               exceptions.NotAuthorized),
        "security_group_create": ({**A, "name": "planted"}, exceptions.NotAuthorized),
    }
    for name, (values, error) in creates.items():
        with pytest.raises(error):
            await getattr(db, name)(other_user, dict(values))
    # nothing was created
    assert await db.instance_get_all(admin) == []
    assert await db.volume_get_all(admin) == []
    assert await db.snapshot_get_all(admin) == []
    with pytest.raises(exceptions.FloatingIpNotFoundForAddress):
        await db.floating_ip_get_by_address(admin, "192.0.2.9")
    assert await db.security_group_get_all(admin) == []
    # in its own project, or in none, the same creates work
    mine = {"project_id": "project2", "user_id": "user2"}
    assert (await db.volume_create(other_user, mine))["project_id"] == "project2"
    assert (await db.instance_create(other_user, {}))["project_id"] is None


async def test_strict_user_cannot_create_rows_under_another_projects_instance(
        db, admin, user, other_user):
    keys = await _seed(db, admin, user)
    before = await _snapshot(db, admin, keys)
    uuid_a = keys["uuid"]
    creates = {
        "block_device_mapping_create": {"instance_uuid": uuid_a, "device_name": "/dev/vdz"},
        "block_device_mapping_update_or_create": {"instance_uuid": uuid_a,
                                                  "device_name": "/dev/vdz"},
        "virtual_interface_create": {"instance_uuid": uuid_a, "address": "fa:16:3e:0:0:9"},
        "instance_fault_create": {"instance_uuid": uuid_a, "code": 500, "message": "x"},
        "fixed_ip_create": {"address": "10.0.0.99", "instance_uuid": uuid_a},
    }
    for name, values in creates.items():
        with pytest.raises(exceptions.InstanceNotFound):
            await getattr(db, name)(other_user, values)
    assert await _snapshot(db, admin, keys) == before
    assert await db.instance_fault_get_by_instance_uuids(admin, [uuid_a]) == {uuid_a: []}
    with pytest.raises(exceptions.FixedIpNotFoundForAddress):
        await db.fixed_ip_get_by_address(admin, "10.0.0.99")
