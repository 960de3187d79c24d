"""Every function of the conductor's API: the single source of truth for signatures.

Each entry gives the parameter list exactly as written in ``nova/db/api.py`` (Folsom), its
kind (``read``: no effect, ``write``: changes rows, ``local``: runs on the caller's side and
never travels), the access check the server applies before the handler runs (``admin``:
``AdminRequired`` for a non-admin context; ``any``: ``NotAuthorized`` for an anonymous one;
``none``: no check), and the protocol version in which it was added.
"""

from __future__ import annotations

import ast
import inspect
from dataclasses import dataclass
from typing import Any, Literal

PROTOCOL_VERSION = "1.0"
SUPPORTED_VERSIONS = ("1.0",)

Kind = Literal["read", "write", "local"]
Access = Literal["admin", "any", "none"]

REQUIRED: Any = inspect.Parameter.empty


@dataclass(frozen=True)
class Param:
    name: str
    default: Any = REQUIRED
    var: Literal["", "*", "**"] = ""


@dataclass(frozen=True)
class Function:
    name: str
    params: tuple[Param, ...]
    kind: Kind
    access: Access
    version: str = PROTOCOL_VERSION

    @property
    def signature(self) -> inspect.Signature:
        return _signature(self)

    @property
    def is_write(self) -> bool:
        return self.kind == "write"


def _parse_params(text: str) -> tuple[Param, ...]:
    tree = ast.parse(f"def f({text}): pass").body[0]
    assert isinstance(tree, ast.FunctionDef)
    args = tree.args
    params: list[Param] = []
    defaults = [ast.literal_eval(d) for d in args.defaults]
    positional = args.args
    first_default = len(positional) - len(defaults)
    for i, arg in enumerate(positional):
        default = defaults[i - first_default] if i >= first_default else REQUIRED
        params.append(Param(arg.arg, default))
    if args.vararg:
        params.append(Param(args.vararg.arg, var="*"))
    if args.kwarg:
        params.append(Param(args.kwarg.arg, var="**"))
    return tuple(params)


def fn(name: str, params: str, kind: Kind, access: Access,
       version: str = PROTOCOL_VERSION) -> Function:
    return Function(name, _parse_params(params), kind, access, version)


_SIGNATURES: dict[str, inspect.Signature] = {}


def _signature(func: Function) -> inspect.Signature:
    sig = _SIGNATURES.get(func.name)
    if sig is None:
        kinds = {"": inspect.Parameter.POSITIONAL_OR_KEYWORD,
                 "*": inspect.Parameter.VAR_POSITIONAL,
                 "**": inspect.Parameter.VAR_KEYWORD}
        sig = inspect.Signature([inspect.Parameter(p.name, kinds[p.var], default=p.default)
                                 for p in func.params])
        _SIGNATURES[func.name] = sig
    return sig


# <catalog>
# Nova Folsom (2012.2) nova/db/api.py: 298 functions, parameter text verbatim from the
# seed 003_70109d99cdd64005.txt, alphabetical; kind/access from spec/api-compute.md and
# spec/api-network-quota-storage.md.
FUNCTIONS: tuple[Function, ...] = (
    fn("agent_build_create", "context, values", "write", "admin"),
    fn("agent_build_destroy", "context, agent_update_id", "write", "admin"),
    fn("agent_build_get_all", "context", "read", "admin"),
    fn("agent_build_get_by_triple", "context, hypervisor, os, architecture", "read", "admin"),
    fn("agent_build_update", "context, agent_build_id, values", "write", "admin"),
    fn("aggregate_create", "context, values, metadata=None", "write", "admin"),
    fn("aggregate_delete", "context, aggregate_id", "write", "admin"),
    fn("aggregate_get", "context, aggregate_id", "read", "admin"),
    fn("aggregate_get_all", "context", "read", "admin"),
    fn("aggregate_get_by_host", "context, host, key=None", "read", "admin"),
    fn("aggregate_host_add", "context, aggregate_id, host", "write", "admin"),
    fn("aggregate_host_delete", "context, aggregate_id, host", "write", "admin"),
    fn("aggregate_host_get_all", "context, aggregate_id", "read", "admin"),
    fn("aggregate_metadata_add",
       "context, aggregate_id, metadata, set_delete=False", "write", "admin"),
    fn("aggregate_metadata_delete", "context, aggregate_id, key", "write", "admin"),
    fn("aggregate_metadata_get", "context, aggregate_id", "read", "admin"),
    fn("aggregate_metadata_get_by_host", "context, host, key=None", "read", "admin"),
    fn("aggregate_update", "context, aggregate_id, values", "write", "admin"),
    fn("block_device_mapping_create", "context, values", "write", "any"),
    fn("block_device_mapping_destroy", "context, bdm_id", "write", "any"),
    fn("block_device_mapping_destroy_by_instance_and_device",
       "context, instance_uuid, device_name", "write", "any"),
    fn("block_device_mapping_destroy_by_instance_and_volume",
       "context, instance_uuid, volume_id", "write", "any"),
    fn("block_device_mapping_get_all_by_instance", "context, instance_uuid", "read", "any"),
    fn("block_device_mapping_update", "context, bdm_id, values", "write", "any"),
    fn("block_device_mapping_update_or_create", "context, values", "write", "any"),
    fn("bw_usage_get_by_uuids", "context, uuids, start_period", "read", "any"),
    fn("bw_usage_update",
       "context, uuid, mac, start_period, bw_in, bw_out, last_refreshed=None", "write", "any"),
    fn("certificate_create", "context, values", "write", "admin"),
    fn("certificate_get_all_by_project", "context, project_id", "read", "admin"),
    fn("certificate_get_all_by_user", "context, user_id", "read", "admin"),
    fn("certificate_get_all_by_user_and_project", "context, user_id, project_id", "read", "admin"),
    fn("compute_node_create", "context, values", "write", "admin"),
    fn("compute_node_get", "context, compute_id", "read", "none"),
    fn("compute_node_get_all", "context", "read", "admin"),
    fn("compute_node_get_by_host", "context, host", "read", "none"),
    fn("compute_node_search_by_hypervisor", "context, hypervisor_match", "read", "admin"),
    fn("compute_node_statistics", "context", "read", "none"),
    fn("compute_node_update", "context, compute_id, values, prune_stats=False", "write", "admin"),
    fn("console_create", "context, values", "write", "none"),
    fn("console_delete", "context, console_id", "write", "none"),
    fn("console_get", "context, console_id, instance_uuid=None", "read", "none"),
    fn("console_get_all_by_instance", "context, instance_uuid", "read", "none"),
    fn("console_get_by_pool_instance", "context, pool_id, instance_uuid", "read", "none"),
    fn("console_pool_create", "context, values", "write", "none"),
    fn("console_pool_get_all_by_host_type", "context, host, console_type", "read", "none"),
    fn("console_pool_get_by_host_type",
       "context, compute_host, proxy_host, console_type", "read", "none"),
    fn("constraint", "**conditions", "local", "none"),
    fn("dnsdomain_get", "context, fqdomain", "read", "any"),
    fn("dnsdomain_list", "context", "read", "any"),
    fn("dnsdomain_register_for_project", "context, fqdomain, project", "write", "admin"),
    fn("dnsdomain_register_for_zone", "context, fqdomain, zone", "write", "admin"),
    fn("dnsdomain_unregister", "context, fqdomain", "write", "admin"),
    fn("ec2_instance_create", "context, instance_ec2_id", "write", "any"),
    fn("ec2_snapshot_create", "context, snapshot_id, forced_id=None", "write", "any"),
    fn("ec2_volume_create", "context, volume_id, forced_id=None", "write", "any"),
    fn("equal_any", "*values", "local", "none"),
    fn("fixed_ip_associate",
       "context, address, instance_uuid, network_id=None, reserved=False", "write", "admin"),
    fn("fixed_ip_associate_pool",
       "context, network_id, instance_uuid=None, host=None", "write", "admin"),
    fn("fixed_ip_bulk_create", "context, ips", "write", "any"),
    fn("fixed_ip_create", "context, values", "write", "any"),
    fn("fixed_ip_disassociate", "context, address", "write", "any"),
    fn("fixed_ip_disassociate_all_by_timeout", "context, host, time", "write", "admin"),
    fn("fixed_ip_get", "context, id", "read", "any"),
    fn("fixed_ip_get_all", "context", "read", "admin"),
    fn("fixed_ip_get_by_address", "context, address", "read", "any"),
    fn("fixed_ip_get_by_instance", "context, instance_uuid", "read", "any"),
    fn("fixed_ip_get_by_network_host", "context, network_uuid, host", "read", "any"),
    fn("fixed_ip_get_network", "context, address", "read", "admin"),
    fn("fixed_ip_update", "context, address, values", "write", "any"),
    fn("fixed_ips_by_virtual_interface", "context, vif_id", "read", "any"),
    fn("floating_ip_allocate_address", "context, project_id, pool", "write", "any"),
    fn("floating_ip_bulk_create", "context, ips", "write", "any"),
    fn("floating_ip_bulk_destroy", "context, ips", "write", "any"),
    fn("floating_ip_count_by_project", "context, project_id, session=None", "read", "any"),
    fn("floating_ip_create", "context, values", "write", "any"),
    fn("floating_ip_deallocate", "context, address", "write", "any"),
    fn("floating_ip_destroy", "context, address", "write", "any"),
    fn("floating_ip_disassociate", "context, address", "write", "any"),
    fn("floating_ip_fixed_ip_associate",
       "context, floating_address, fixed_address, host", "write", "any"),
    fn("floating_ip_get", "context, id", "read", "any"),
    fn("floating_ip_get_all", "context", "read", "admin"),
    fn("floating_ip_get_all_by_host", "context, host", "read", "admin"),
    fn("floating_ip_get_all_by_project", "context, project_id", "read", "any"),
    fn("floating_ip_get_by_address", "context, address", "read", "any"),
    fn("floating_ip_get_by_fixed_address", "context, fixed_address", "read", "any"),
    fn("floating_ip_get_by_fixed_ip_id", "context, fixed_ip_id", "read", "any"),
    fn("floating_ip_get_pools", "context", "read", "any"),
    fn("floating_ip_set_auto_assigned", "context, address", "write", "any"),
    fn("floating_ip_update", "context, address, values", "write", "any"),
    fn("get_ec2_instance_id_by_uuid", "context, instance_id", "read", "any"),
    fn("get_ec2_snapshot_id_by_uuid", "context, snapshot_id", "read", "any"),
    fn("get_ec2_volume_id_by_uuid", "context, volume_id", "read", "any"),
    fn("get_instance_uuid_by_ec2_id", "context, ec2_id", "read", "any"),
    fn("get_snapshot_uuid_by_ec2_id", "context, ec2_id", "read", "any"),
    fn("get_volume_uuid_by_ec2_id", "context, ec2_id", "read", "any"),
    fn("instance_add_security_group", "context, instance_id, security_group_id", "write", "any"),
    fn("instance_create", "context, values", "write", "any"),
    fn("instance_data_get_for_project", "context, project_id, session=None", "read", "admin"),
    fn("instance_destroy", "context, instance_uuid, constraint=None", "write", "any"),
    fn("instance_fault_create", "context, values", "write", "none"),
    fn("instance_fault_get_by_instance_uuids", "context, instance_uuids", "read", "none"),
    fn("instance_get", "context, instance_id", "read", "any"),
    fn("instance_get_active_by_window",
       "context, begin, end=None, project_id=None, host=None", "read", "any"),
    fn("instance_get_active_by_window_joined",
       "context, begin, end=None, project_id=None, host=None", "read", "admin"),
    fn("instance_get_all", "context, columns_to_join=None", "read", "admin"),
    fn("instance_get_all_by_filters",
       "context, filters, sort_key='created_at', sort_dir='desc', limit=None, marker=None", "read", "any"),
    fn("instance_get_all_by_host", "context, host", "read", "admin"),
    fn("instance_get_all_by_host_and_not_type", "context, host, type_id=None", "read", "admin"),
    fn("instance_get_all_by_project", "context, project_id", "read", "admin"),
    fn("instance_get_all_by_reservation", "context, reservation_id", "read", "admin"),
    fn("instance_get_all_hung_in_rebooting", "context, reboot_window", "read", "admin"),
    fn("instance_get_by_uuid", "context, uuid", "read", "any"),
    fn("instance_get_floating_address", "context, instance_id", "read", "any"),
    fn("instance_info_cache_create", "context, values", "write", "any"),
    fn("instance_info_cache_delete", "context, instance_uuid", "write", "any"),
    fn("instance_info_cache_get", "context, instance_uuid", "read", "any"),
    fn("instance_info_cache_update", "context, instance_uuid, values", "write", "any"),
    fn("instance_metadata_delete", "context, instance_uuid, key", "write", "any"),
    fn("instance_metadata_get", "context, instance_uuid", "read", "any"),
    fn("instance_metadata_update", "context, instance_uuid, metadata, delete", "write", "any"),
    fn("instance_remove_security_group", "context, instance_id, security_group_id", "write", "any"),
    fn("instance_system_metadata_delete", "context, instance_uuid, key", "write", "any"),
    fn("instance_system_metadata_get", "context, instance_uuid", "read", "any"),
    fn("instance_system_metadata_update",
       "context, instance_uuid, metadata, delete", "write", "any"),
    fn("instance_test_and_set",
       "context, instance_uuid, attr, ok_states, new_state", "write", "any"),
    fn("instance_type_access_add", "context, flavor_id, project_id", "write", "admin"),
    fn("instance_type_access_get_by_flavor_id", "context, flavor_id", "read", "admin"),
    fn("instance_type_access_remove", "context, flavor_id, project_id", "write", "admin"),
    fn("instance_type_create", "context, values", "write", "admin"),
    fn("instance_type_destroy", "context, name", "write", "admin"),
    fn("instance_type_extra_specs_delete", "context, flavor_id, key", "write", "any"),
    fn("instance_type_extra_specs_get", "context, flavor_id", "read", "any"),
    fn("instance_type_extra_specs_update_or_create",
       "context, flavor_id, extra_specs", "write", "any"),
    fn("instance_type_get", "context, id", "read", "any"),
    fn("instance_type_get_all", "context, inactive=False, filters=None", "read", "any"),
    fn("instance_type_get_by_flavor_id", "context, id", "read", "any"),
    fn("instance_type_get_by_name", "context, name", "read", "any"),
    fn("instance_update", "context, instance_uuid, values", "write", "any"),
    fn("instance_update_and_get_original", "context, instance_uuid, values", "write", "any"),
    fn("iscsi_target_count_by_host", "context, host", "read", "admin"),
    fn("iscsi_target_create_safe", "context, values", "write", "admin"),
    fn("key_pair_count_by_user", "context, user_id", "read", "none"),
    fn("key_pair_create", "context, values", "write", "any"),
    fn("key_pair_destroy", "context, user_id, name", "write", "any"),
    fn("key_pair_destroy_all_by_user", "context, user_id", "write", "any"),
    fn("key_pair_get", "context, user_id, name", "read", "any"),
    fn("key_pair_get_all_by_user", "context, user_id", "read", "any"),
    fn("migration_create", "context, values", "write", "admin"),
    fn("migration_get", "context, migration_id", "read", "admin"),
    fn("migration_get_by_instance_and_status", "context, instance_uuid, status", "read", "admin"),
    fn("migration_get_unconfirmed_by_dest_compute",
       "context, confirm_window, dest_compute", "read", "admin"),
    fn("migration_update", "context, id, values", "write", "admin"),
    fn("network_associate", "context, project_id, network_id=None, force=False", "write", "admin"),
    fn("network_count", "context", "read", "admin"),
    fn("network_count_reserved_ips", "context, network_id", "read", "admin"),
    fn("network_create_fixed_ips", "context, network_id, num_vpn_clients", "write", "admin"),
    fn("network_create_safe", "context, values", "write", "admin"),
    fn("network_delete_safe", "context, network_id", "write", "admin"),
    fn("network_disassociate", "context, network_id", "write", "admin"),
    fn("network_get", "context, network_id, project_only='allow_none'", "read", "any"),
    fn("network_get_all", "context", "read", "any"),
    fn("network_get_all_by_host", "context, host", "read", "admin"),
    fn("network_get_all_by_instance", "context, instance_id", "read", "admin"),
    fn("network_get_all_by_uuids",
       "context, network_uuids, project_only='allow_none'", "read", "any"),
    fn("network_get_associated_fixed_ips", "context, network_id, host=None", "read", "admin"),
    fn("network_get_by_bridge", "context, bridge", "read", "admin"),
    fn("network_get_by_cidr", "context, cidr", "read", "admin"),
    fn("network_get_by_instance", "context, instance_id", "read", "admin"),
    fn("network_get_by_uuid", "context, uuid", "read", "admin"),
    fn("network_get_index", "context, network_id", "read", "admin"),
    fn("network_set_cidr", "context, network_id, cidr", "write", "admin"),
    fn("network_set_host", "context, network_id, host_id", "write", "admin"),
    fn("network_update", "context, network_id, values", "write", "any"),
    fn("not_equal", "*values", "local", "none"),
    fn("project_get_networks", "context, project_id, associate=True", "write", "any"),
    fn("provider_fw_rule_create", "context, rule", "write", "admin"),
    fn("provider_fw_rule_destroy", "context, rule_id", "write", "admin"),
    fn("provider_fw_rule_get_all", "context", "read", "admin"),
    fn("quota_class_create", "context, class_name, resource, limit", "write", "admin"),
    fn("quota_class_destroy", "context, class_name, resource", "write", "admin"),
    fn("quota_class_destroy_all_by_name", "context, class_name", "write", "admin"),
    fn("quota_class_get", "context, class_name, resource", "read", "any"),
    fn("quota_class_get_all_by_name", "context, class_name", "read", "any"),
    fn("quota_class_update", "context, class_name, resource, limit", "write", "admin"),
    fn("quota_create", "context, project_id, resource, limit", "write", "admin"),
    fn("quota_destroy", "context, project_id, resource", "write", "admin"),
    fn("quota_destroy_all_by_project", "context, project_id", "write", "admin"),
    fn("quota_get", "context, project_id, resource", "read", "any"),
    fn("quota_get_all_by_project", "context, project_id", "read", "any"),
    fn("quota_reserve",
       "context, resources, quotas, deltas, expire, until_refresh, max_age", "write", "any"),
    fn("quota_update", "context, project_id, resource, limit", "write", "admin"),
    fn("quota_usage_create",
       "context, project_id, resource, in_use, reserved, until_refresh", "write", "admin"),
    fn("quota_usage_destroy", "context, project_id, resource", "write", "admin"),
    fn("quota_usage_get", "context, project_id, resource", "read", "any"),
    fn("quota_usage_get_all_by_project", "context, project_id", "read", "any"),
    fn("quota_usage_update",
       "context, project_id, resource, in_use, reserved, until_refresh", "write", "admin"),
    fn("reservation_commit", "context, reservations", "write", "any"),
    fn("reservation_create",
       "context, uuid, usage, project_id, resource, delta, expire", "write", "admin"),
    fn("reservation_destroy", "context, uuid", "write", "admin"),
    fn("reservation_expire", "context", "write", "admin"),
    fn("reservation_get", "context, uuid", "read", "any"),
    fn("reservation_get_all_by_project", "context, project_id", "read", "any"),
    fn("reservation_rollback", "context, reservations", "write", "any"),
    fn("s3_image_create", "context, image_uuid", "write", "none"),
    fn("s3_image_get", "context, image_id", "read", "none"),
    fn("s3_image_get_by_uuid", "context, image_uuid", "read", "none"),
    fn("security_group_count_by_project", "context, project_id, session=None", "read", "any"),
    fn("security_group_create", "context, values", "write", "any"),
    fn("security_group_destroy", "context, security_group_id", "write", "any"),
    fn("security_group_ensure_default", "context", "write", "none"),
    fn("security_group_exists", "context, project_id, group_name", "read", "any"),
    fn("security_group_get", "context, security_group_id", "read", "any"),
    fn("security_group_get_all", "context", "read", "any"),
    fn("security_group_get_by_instance", "context, instance_id", "read", "any"),
    fn("security_group_get_by_name", "context, project_id, group_name", "read", "any"),
    fn("security_group_get_by_project", "context, project_id", "read", "any"),
    fn("security_group_in_use", "context, group_id", "read", "any"),
    fn("security_group_rule_count_by_group", "context, security_group_id", "read", "any"),
    fn("security_group_rule_create", "context, values", "write", "any"),
    fn("security_group_rule_destroy", "context, security_group_rule_id", "write", "any"),
    fn("security_group_rule_get", "context, security_group_rule_id", "read", "any"),
    fn("security_group_rule_get_by_security_group", "context, security_group_id", "read", "any"),
    fn("security_group_rule_get_by_security_group_grantee",
       "context, security_group_id", "read", "any"),
    fn("service_create", "context, values", "write", "admin"),
    fn("service_destroy", "context, instance_id", "write", "admin"),
    fn("service_get", "context, service_id", "read", "admin"),
    fn("service_get_all", "context, disabled=None", "read", "admin"),
    fn("service_get_all_by_host", "context, host", "read", "admin"),
    fn("service_get_all_by_topic", "context, topic", "read", "admin"),
    fn("service_get_all_compute_by_host", "context, host", "read", "admin"),
    fn("service_get_all_compute_sorted", "context", "read", "admin"),
    fn("service_get_all_volume_sorted", "context", "read", "admin"),
    fn("service_get_by_args", "context, host, binary", "read", "admin"),
    fn("service_get_by_host_and_topic", "context, host, topic", "read", "admin"),
    fn("service_update", "context, service_id, values", "write", "admin"),
    fn("sm_backend_conf_create", "context, values", "write", "admin"),
    fn("sm_backend_conf_delete", "context, sm_backend_conf_id", "write", "admin"),
    fn("sm_backend_conf_get", "context, sm_backend_conf_id", "read", "admin"),
    fn("sm_backend_conf_get_all", "context", "read", "admin"),
    fn("sm_backend_conf_get_by_sr", "context, sr_uuid", "read", "admin"),
    fn("sm_backend_conf_update", "context, sm_backend_conf_id, values", "write", "admin"),
    fn("sm_flavor_create", "context, values", "write", "admin"),
    fn("sm_flavor_delete", "context, sm_flavor_id", "write", "admin"),
    fn("sm_flavor_get", "context, sm_flavor_id", "read", "admin"),
    fn("sm_flavor_get_all", "context", "read", "admin"),
    fn("sm_flavor_get_by_label", "context, sm_flavor_label", "read", "admin"),
    fn("sm_flavor_update", "context, sm_flavor_id, values", "write", "admin"),
    fn("sm_volume_create", "context, values", "write", "none"),
    fn("sm_volume_delete", "context, volume_id", "write", "none"),
    fn("sm_volume_get", "context, volume_id", "read", "none"),
    fn("sm_volume_get_all", "context", "read", "none"),
    fn("sm_volume_update", "context, volume_id, values", "write", "none"),
    fn("snapshot_create", "context, values", "write", "any"),
    fn("snapshot_destroy", "context, snapshot_id", "write", "admin"),
    fn("snapshot_get", "context, snapshot_id", "read", "any"),
    fn("snapshot_get_all", "context", "read", "admin"),
    fn("snapshot_get_all_by_project", "context, project_id", "read", "any"),
    fn("snapshot_get_all_for_volume", "context, volume_id", "read", "any"),
    fn("snapshot_update", "context, snapshot_id, values", "write", "any"),
    fn("task_log_begin_task",
       "context, task_name, period_beginning, period_ending, host, task_items=None, message=None, session=None", "write", "admin"),
    fn("task_log_end_task",
       "context, task_name, period_beginning, period_ending, host, errors, message=None, session=None", "write", "admin"),
    fn("task_log_get",
       "context, task_name, period_beginning, period_ending, host, state=None, session=None", "read", "admin"),
    fn("task_log_get_all",
       "context, task_name, period_beginning, period_ending, host=None, state=None, session=None", "read", "admin"),
    fn("virtual_interface_create", "context, values", "write", "any"),
    fn("virtual_interface_delete", "context, vif_id", "write", "any"),
    fn("virtual_interface_delete_by_instance", "context, instance_id", "write", "any"),
    fn("virtual_interface_get", "context, vif_id", "read", "any"),
    fn("virtual_interface_get_all", "context", "read", "any"),
    fn("virtual_interface_get_by_address", "context, address", "read", "any"),
    fn("virtual_interface_get_by_instance", "context, instance_id", "read", "any"),
    fn("virtual_interface_get_by_instance_and_network",
       "context, instance_id, network_id", "read", "any"),
    fn("virtual_interface_get_by_uuid", "context, vif_uuid", "read", "any"),
    fn("volume_allocate_iscsi_target", "context, volume_id, host", "write", "admin"),
    fn("volume_attached", "context, volume_id, instance_id, mountpoint", "write", "admin"),
    fn("volume_create", "context, values", "write", "any"),
    fn("volume_data_get_for_project", "context, project_id, session=None", "read", "admin"),
    fn("volume_destroy", "context, volume_id", "write", "admin"),
    fn("volume_detached", "context, volume_id", "write", "admin"),
    fn("volume_get", "context, volume_id", "read", "any"),
    fn("volume_get_active_by_window", "context, begin, end=None, project_id=None", "read", "any"),
    fn("volume_get_all", "context", "read", "admin"),
    fn("volume_get_all_by_host", "context, host", "read", "admin"),
    fn("volume_get_all_by_instance_uuid", "context, instance_uuid", "read", "admin"),
    fn("volume_get_all_by_project", "context, project_id", "read", "any"),
    fn("volume_get_by_ec2_id", "context, ec2_id", "read", "any"),
    fn("volume_get_iscsi_target_num", "context, volume_id", "read", "admin"),
    fn("volume_metadata_delete", "context, volume_id, key", "write", "any"),
    fn("volume_metadata_get", "context, volume_id", "read", "any"),
    fn("volume_metadata_update", "context, volume_id, metadata, delete", "write", "any"),
    fn("volume_type_create", "context, values", "write", "admin"),
    fn("volume_type_destroy", "context, name", "write", "admin"),
    fn("volume_type_extra_specs_delete", "context, volume_type_id, key", "write", "any"),
    fn("volume_type_extra_specs_get", "context, volume_type_id", "read", "any"),
    fn("volume_type_extra_specs_update_or_create",
       "context, volume_type_id, extra_specs", "write", "any"),
    fn("volume_type_get", "context, id", "read", "any"),
    fn("volume_type_get_all", "context, inactive=False", "read", "any"),
    fn("volume_type_get_by_name", "context, name", "read", "any"),
    fn("volume_update", "context, volume_id, values", "write", "any"),
    # --- database snapshots (spec/database-snapshots.md): writes admin, reads any ---
    fn("database_snapshot_create", "context, values", "write", "admin"),
    fn("database_snapshot_creation_timestamp", "context, resource_id", "read", "any"),
    fn("database_snapshot_destroy", "context, resource_id", "write", "admin"),
    fn("database_snapshot_get", "context, resource_id", "read", "any"),
    fn("database_snapshot_get_all",
       "context, filters=None, sort_key='create_time', sort_dir='desc', limit=None, marker=None", "read", "any"),
    fn("database_snapshot_get_all_by_instance", "context, instance_resource_id", "read", "any"),
    fn("database_snapshot_get_by_provider_id",
       "context, organization_service_id, region_name, snapshot_id", "read", "any"),
    fn("database_snapshot_update", "context, resource_id, values", "write", "admin"),
)

NOVA_FUNCTION_COUNT = 298
# </catalog>

BY_NAME: dict[str, Function] = {f.name: f for f in FUNCTIONS}


def get(name: str) -> Function | None:
    return BY_NAME.get(name)


def remote_functions() -> list[Function]:
    return [f for f in FUNCTIONS if f.kind != "local"]


# --- protocol versions ------------------------------------------------------------------
# A version is "MAJOR.MINOR". A minor bump adds functions (or optional parameters) that an
# older conductor of the same major does not know; a major bump breaks compatibility. As in
# oslo.messaging's version caps, a message of version V may go to a peer that speaks C when
# both have the same major and V's minor is at most C's.


def parse_version(text: str) -> tuple[int, int]:
    """``"1.2"`` -> ``(1, 2)``; ValueError for anything else."""
    major, dot, minor = text.partition(".") if isinstance(text, str) else ("", "", "")
    if not (dot and major.isdigit() and minor.isdigit() and major.isascii()
            and minor.isascii()):
        raise ValueError(f"a protocol version is 'MAJOR.MINOR', not {text!r}")
    return int(major), int(minor)


def version_allows(cap: str, version: str) -> bool:
    """May a message of ``version`` go to a peer that speaks at most ``cap``?"""
    cap_major, cap_minor = parse_version(cap)
    major, minor = parse_version(version)
    return major == cap_major and minor <= cap_minor


# --- results ------------------------------------------------------------------------------
# What each function returns, as a Python type expression for the generated client
# (client/_api.py); a function not listed here returns ``Any`` there. Rows travel as plain
# dicts (joined rows nested), so a row is ``dict[str, Any]``.
ROW = "dict[str, Any]"
ROWS = "list[dict[str, Any]]"
OPTIONAL_ROW = "dict[str, Any] | None"
_RETURNS_BY_TYPE: tuple[tuple[str, str], ...] = (
    # One row, NotFound when there is none (the spec's "Errors:" line).
    (ROW, """
        agent_build_create aggregate_create aggregate_get aggregate_update certificate_create
        compute_node_create compute_node_get compute_node_update console_create console_get
        console_get_by_pool_instance console_pool_create console_pool_get_by_host_type
        database_snapshot_create database_snapshot_update ec2_instance_create
        ec2_volume_create fixed_ip_get fixed_ip_get_by_address instance_create
        instance_destroy instance_fault_create instance_get instance_get_by_uuid
        instance_info_cache_create instance_info_cache_update instance_type_access_add
        instance_type_create instance_type_get instance_type_get_by_flavor_id
        instance_type_get_by_name instance_update key_pair_create key_pair_get
        migration_create migration_get migration_get_by_instance_and_status
        migration_update network_get network_get_by_bridge network_get_by_cidr
        network_get_by_uuid network_update provider_fw_rule_create quota_class_create
        quota_class_get quota_create quota_get quota_usage_create quota_usage_get
        reservation_create reservation_get s3_image_create s3_image_get
        s3_image_get_by_uuid security_group_create security_group_get
        security_group_get_by_name security_group_rule_create security_group_rule_get
        service_create service_get service_get_by_args sm_backend_conf_create
        sm_backend_conf_get sm_backend_conf_get_by_sr sm_backend_conf_update
        sm_flavor_create sm_flavor_get sm_flavor_get_by_label sm_flavor_update
        sm_volume_create sm_volume_get sm_volume_update snapshot_create snapshot_get
        task_log_begin_task task_log_end_task virtual_interface_create volume_create
        volume_destroy volume_get volume_type_create volume_type_get
        volume_type_get_by_name volume_update
    """),
    # One row, or None when there is none (no exception).
    (OPTIONAL_ROW, """
        agent_build_get_by_triple compute_node_get_by_host dnsdomain_get
        fixed_ip_get_network instance_info_cache_get network_create_safe
        iscsi_target_create_safe service_get_by_host_and_topic task_log_get
        virtual_interface_get virtual_interface_get_by_address
        virtual_interface_get_by_instance_and_network virtual_interface_get_by_uuid
    """),
    # Rows.
    (ROWS, """
        fixed_ips_by_virtual_interface floating_ip_get_all floating_ip_get_all_by_project
        floating_ip_get_by_fixed_address floating_ip_get_pools network_get_all_by_host
        network_get_all_by_uuids network_get_associated_fixed_ips
        virtual_interface_get_by_instance
    """),
    # Mappings that are not rows: quota and usage sheets, metadata, statistics.
    ("dict[str, Any]", """
        aggregate_metadata_get_by_host compute_node_statistics
        instance_fault_get_by_instance_uuids instance_metadata_update
        quota_class_get_all_by_name quota_get_all_by_project quota_usage_get_all_by_project
        reservation_get_all_by_project volume_metadata_get volume_type_get_all
    """),
    ("list[str]", "dnsdomain_list"),
    ("int", """
        fixed_ip_disassociate_all_by_timeout floating_ip_count_by_project
        get_ec2_instance_id_by_uuid iscsi_target_count_by_host key_pair_count_by_user
        network_count network_count_reserved_ips security_group_count_by_project
        security_group_rule_count_by_group volume_allocate_iscsi_target
    """),
    ("bool", "security_group_exists security_group_in_use"),
    # Address strings.
    ("str", """
        fixed_ip_associate_pool fixed_ip_create floating_ip_allocate_address
        floating_ip_create floating_ip_disassociate
    """),
    # The spec says "Returns None".
    ("None", """
        agent_build_destroy agent_build_update aggregate_delete aggregate_host_add
        aggregate_host_delete aggregate_metadata_add aggregate_metadata_delete
        block_device_mapping_create block_device_mapping_destroy
        block_device_mapping_destroy_by_instance_and_device
        block_device_mapping_destroy_by_instance_and_volume block_device_mapping_update
        block_device_mapping_update_or_create bw_usage_update console_delete
        dnsdomain_register_for_project dnsdomain_register_for_zone dnsdomain_unregister
        fixed_ip_bulk_create fixed_ip_disassociate fixed_ip_update floating_ip_bulk_destroy
        floating_ip_deallocate floating_ip_destroy floating_ip_fixed_ip_associate
        floating_ip_set_auto_assigned floating_ip_update instance_add_security_group
        instance_info_cache_delete instance_metadata_delete instance_remove_security_group
        instance_system_metadata_delete instance_system_metadata_update
        instance_test_and_set instance_type_access_remove instance_type_destroy
        instance_type_extra_specs_delete instance_type_extra_specs_update_or_create
        key_pair_destroy key_pair_destroy_all_by_user network_delete_safe
        network_disassociate provider_fw_rule_destroy quota_class_destroy
        quota_class_destroy_all_by_name quota_class_update quota_destroy
        quota_destroy_all_by_project quota_update quota_usage_destroy quota_usage_update
        reservation_destroy security_group_destroy security_group_rule_destroy
        service_destroy service_update sm_backend_conf_delete sm_flavor_delete
        sm_volume_delete snapshot_destroy snapshot_update virtual_interface_delete
        virtual_interface_delete_by_instance volume_attached volume_detached
        volume_metadata_delete volume_metadata_update volume_type_destroy
        volume_type_extra_specs_delete volume_type_extra_specs_update_or_create
    """),
)
# From the specs' "Returns ..." and "Errors: ...NotFound" sentences; everything else
# (tuples, lists of mixed shapes, functions the specs leave open) stays ``Any``.
RETURNS: dict[str, str] = {name: kind for kind, names in _RETURNS_BY_TYPE
                           for name in names.split()}


def returns(name: str) -> str:
    return RETURNS.get(name, "Any")
