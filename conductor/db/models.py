"""Every table of the conductor: Nova Folsom's schema (models.md) plus ``database_snapshots``.

Columns, types, nullability and Python-side defaults are those of ``models.md`` §2; where
the model and the migration-built schema differ, the schema the Nova tests ran against wins
(§3), as noted at each place.  What a row carries beyond its columns (relationships with
their join conditions exactly as models.md §2 states them, the relationships every result
carries, computed attributes of §1.2) is declared in the table's ``__carries__``
(:class:`~conductor.db.base.Carries`); :mod:`conductor.db.loading` reads it.

Foreign keys.  Folsom's tests ran on SQLite without FK enforcement, so nothing in Nova ever
failed for a missing parent; PostgreSQL enforces every FK we declare.  Hence:

* no ``instance_uuid -> instances.uuid`` reference is a foreign key (models.md §3: faults and
  migrations must accept unknown instances, the others are documentation only);
* integer/id references are real foreign keys, except where an API function writes a child
  whose parent may be missing or hard-deletes a parent that is still referenced:
  ``sm_backend_config.flavor_id`` (Nova's test creates a backend for flavor 1 that does not
  exist; ``sm_flavor_delete`` hard-deletes), ``sm_volume.backend_id``
  (``sm_backend_conf_delete`` hard-deletes), ``volume_type_extra_specs.volume_type_id``
  (``volume_type_extra_specs_update_or_create`` does not check the type);
* ``compute_node_stats.compute_node_id`` is enforced at commit (DEFERRABLE INITIALLY
  DEFERRED): ``compute_node_update`` may write stats before it finds out that the node is
  missing, and then rolls back with ``ComputeHostNotFound`` (api-compute.md §3.3).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping
from typing import Any, ClassVar, cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnElement,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    TextClause,
    UniqueConstraint,
    and_,
    exists,
    false,
    or_,
    select,
    text,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column

from conductor.db.base import (
    NOTHING,
    OWN_PROJECT,
    Base,
    Carries,
    Config,
    NovaBase,
    Owner,
    Rel,
    utcnow,
)


def _zero() -> TextClause:
    return text("0")


def _now_text() -> str:
    # task_log periods are text columns; Nova assigned a datetime, stored as str(datetime)
    return str(utcnow())


# --- computed attributes (models.md §1.2) ---------------------------------------------------

def instance_name(row: Mapping[str, Any], config: Config) -> str:
    """``instance['name']``: ``instance_name_template`` applied to the row.

    ``%08x``-style templates get the integer id; templates with named fields get every
    column value (never ``name``); a field the row cannot fill gives the uuid.
    """
    template = config.instance_name_template
    try:
        return template % row.get("id")
    except (TypeError, ValueError):
        pass  # not a positional template: try the named fields
    info = {key: row.get(key) for key in Instance.__table__.c.keys() if key != "name"}
    try:
        return template % info
    except KeyError:
        pass  # a field no column fills (``name`` included): the uuid, as in Nova
    except (TypeError, ValueError):
        pass  # Nova would raise; a template usable neither way names it by uuid too
    return cast(str, row.get("uuid"))


def _aggregate_computed(row: Mapping[str, Any], config: Config) -> dict[str, Any]:
    # Derived only from relationships the caller loaded; the joins already drop deleted
    # rows and every row of a deleted aggregate.
    out: dict[str, Any] = {}
    if "_hosts" in row:
        out["hosts"] = [h["host"] for h in row["_hosts"] or ()]
    if "_metadata" in row:
        out["metadetails"] = {m["key"]: m["value"] for m in row["_metadata"] or ()}
    return out


# --- services and compute nodes -------------------------------------------------------------

class Service(NovaBase, Base):
    __tablename__ = "services"
    __table_args__ = (Index("ix_services_host_topic", "host", "topic"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    host: Mapped[str | None] = mapped_column(String(255))
    binary: Mapped[str | None] = mapped_column(String(255))
    topic: Mapped[str | None] = mapped_column(String(255))
    report_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0,
                                              server_default=_zero())
    disabled: Mapped[bool | None] = mapped_column(Boolean, default=False,
                                                  server_default=false())
    availability_zone: Mapped[str | None] = mapped_column(String(255), default="nova",
                                                          server_default="nova")

    __carries__: ClassVar[Carries] = Carries(relations={
        "compute_node": Rel("compute_nodes", lambda: and_(
            ComputeNode.service_id == Service.id, ComputeNode.deleted == false())),
    })


class ComputeNode(NovaBase, Base):
    __tablename__ = "compute_nodes"
    __table_args__ = (Index("ix_compute_nodes_service_id", "service_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    service_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("services.id"))
    vcpus: Mapped[int | None] = mapped_column(Integer)
    memory_mb: Mapped[int | None] = mapped_column(Integer)
    local_gb: Mapped[int | None] = mapped_column(Integer)
    vcpus_used: Mapped[int | None] = mapped_column(Integer)
    memory_mb_used: Mapped[int | None] = mapped_column(Integer)
    local_gb_used: Mapped[int | None] = mapped_column(Integer)
    hypervisor_type: Mapped[str | None] = mapped_column(Text)
    hypervisor_version: Mapped[int | None] = mapped_column(Integer)
    hypervisor_hostname: Mapped[str | None] = mapped_column(String(255))
    free_ram_mb: Mapped[int | None] = mapped_column(Integer)
    free_disk_gb: Mapped[int | None] = mapped_column(Integer)
    current_workload: Mapped[int | None] = mapped_column(Integer)
    running_vms: Mapped[int | None] = mapped_column(Integer)
    cpu_info: Mapped[str | None] = mapped_column(Text)
    disk_available_least: Mapped[int | None] = mapped_column(Integer)

    __carries__: ClassVar[Carries] = Carries(relations={
        "service": Rel("services", lambda: and_(
            Service.id == ComputeNode.service_id, ComputeNode.deleted == false()),
            uselist=False),
        "stats": Rel("compute_node_stats", lambda: and_(
            ComputeNodeStat.compute_node_id == ComputeNode.id,
            ComputeNodeStat.deleted == false())),
    })


class ComputeNodeStat(NovaBase, Base):
    __tablename__ = "compute_node_stats"
    __table_args__ = (Index("ix_compute_node_stats_compute_node_id", "compute_node_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str | None] = mapped_column(String(511))
    value: Mapped[str | None] = mapped_column(String(255))
    # checked at commit: see the module docstring (compute_node_update)
    compute_node_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("compute_nodes.id", deferrable=True, initially="DEFERRED"))

    # the stat's side of the relationship is (confusingly) also called "stats"
    __carries__: ClassVar[Carries] = Carries(relations={
        "stats": Rel("compute_nodes", lambda: and_(
            ComputeNodeStat.compute_node_id == ComputeNode.id,
            ComputeNodeStat.deleted == false()), uselist=False),
    })


class Certificate(NovaBase, Base):
    __tablename__ = "certificates"
    __table_args__ = (Index("ix_certificates_project_id_deleted", "project_id", "deleted"),
                      Index("ix_certificates_user_id_deleted", "user_id", "deleted"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[str | None] = mapped_column(String(255))
    project_id: Mapped[str | None] = mapped_column(String(255))
    file_name: Mapped[str | None] = mapped_column(String(255))


# --- instances ------------------------------------------------------------------------------

class Instance(NovaBase, Base):
    __tablename__ = "instances"
    __table_args__ = (
        # unique in the migrated schema, not in the model (models.md §3)
        Index("ix_instances_uuid", "uuid", unique=True),
        Index("ix_instances_project_id", "project_id"),
        Index("ix_instances_host_deleted", "host", "deleted"),
        # The host filter of instance_get_all_by_filters is a regular expression (~),
        # which a b-tree cannot serve; a trigram index can (PostgreSQL only, migration
        # 0004; SQLite has no such index).
        Index("ix_instances_host_trgm", "host", postgresql_using="gin",
              postgresql_ops={"host": "gin_trgm_ops"}),
        Index("ix_instances_reservation_id", "reservation_id"),
        Index("ix_instances_terminated_at_launched_at", "terminated_at", "launched_at"),
        Index("ix_instances_uuid_deleted", "uuid", "deleted"),
        Index("ix_instances_task_state_updated_at", "task_state", "updated_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str | None] = mapped_column(String(255))
    project_id: Mapped[str | None] = mapped_column(String(255))
    image_ref: Mapped[str | None] = mapped_column(String(255))
    kernel_id: Mapped[str | None] = mapped_column(String(255))
    ramdisk_id: Mapped[str | None] = mapped_column(String(255))
    server_name: Mapped[str | None] = mapped_column(String(255))
    launch_index: Mapped[int | None] = mapped_column(Integer)
    key_name: Mapped[str | None] = mapped_column(String(255))
    key_data: Mapped[str | None] = mapped_column(Text)
    power_state: Mapped[int | None] = mapped_column(Integer)
    vm_state: Mapped[str | None] = mapped_column(String(255))
    task_state: Mapped[str | None] = mapped_column(String(255))
    memory_mb: Mapped[int | None] = mapped_column(Integer)
    vcpus: Mapped[int | None] = mapped_column(Integer)
    root_gb: Mapped[int | None] = mapped_column(Integer)
    ephemeral_gb: Mapped[int | None] = mapped_column(Integer)
    hostname: Mapped[str | None] = mapped_column(String(255))
    host: Mapped[str | None] = mapped_column(String(255))
    instance_type_id: Mapped[int | None] = mapped_column(Integer)  # instance_types.id, no FK
    user_data: Mapped[str | None] = mapped_column(Text)
    reservation_id: Mapped[str | None] = mapped_column(String(255))
    scheduled_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    launched_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    terminated_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    availability_zone: Mapped[str | None] = mapped_column(String(255))
    display_name: Mapped[str | None] = mapped_column(String(255))
    display_description: Mapped[str | None] = mapped_column(String(255))
    launched_on: Mapped[str | None] = mapped_column(Text)
    locked: Mapped[bool | None] = mapped_column(Boolean)
    os_type: Mapped[str | None] = mapped_column(String(255))
    architecture: Mapped[str | None] = mapped_column(String(255))
    vm_mode: Mapped[str | None] = mapped_column(String(255))
    uuid: Mapped[str | None] = mapped_column(String(36))
    root_device_name: Mapped[str | None] = mapped_column(String(255))
    default_ephemeral_device: Mapped[str | None] = mapped_column(String(255))
    default_swap_device: Mapped[str | None] = mapped_column(String(255))
    config_drive: Mapped[str | None] = mapped_column(String(255))
    access_ip_v4: Mapped[str | None] = mapped_column(String(255))
    access_ip_v6: Mapped[str | None] = mapped_column(String(255))
    auto_disk_config: Mapped[bool | None] = mapped_column(Boolean)
    progress: Mapped[int | None] = mapped_column(Integer)
    shutdown_terminate: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False,
                                                     server_default=false())
    disable_terminate: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False,
                                                    server_default=false())

    __carries__: ClassVar[Carries] = Carries(
        owner=OWN_PROJECT,
        relations={
            "info_cache": Rel("instance_info_caches",  # no delete filter
                              lambda: InstanceInfoCache.instance_uuid == Instance.uuid,
                              uselist=False),
            "instance_type": Rel("instance_types",  # no delete filter
                                 lambda: InstanceTypes.id == Instance.instance_type_id,
                                 uselist=False),
            "metadata": Rel("instance_metadata", lambda: and_(
                InstanceMetadata.instance_uuid == Instance.uuid,
                InstanceMetadata.deleted == false())),
            "system_metadata": Rel("instance_system_metadata", lambda: and_(
                InstanceSystemMetadata.instance_uuid == Instance.uuid,
                InstanceSystemMetadata.deleted == false())),
            "block_device_mapping": Rel("block_device_mapping", lambda: and_(
                BlockDeviceMapping.instance_uuid == Instance.uuid,
                BlockDeviceMapping.deleted == false())),
            # many-to-many: association live, group live, instance live
            "security_groups": Rel(
                "security_groups",
                lambda: and_(_SGA.instance_uuid == Instance.uuid, _SGA.deleted == false(),
                             Instance.deleted == false()),
                through="security_group_instance_association",
                through_on=lambda: and_(_SGA.security_group_id == SecurityGroup.id,
                                        SecurityGroup.deleted == false())),
        },
        always=("system_metadata",),
        computed=lambda row, config: {"name": instance_name(row, config)},
    )


class InstanceInfoCache(NovaBase, Base):
    __tablename__ = "instance_info_caches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    network_info: Mapped[str | None] = mapped_column(Text)
    # refers to instances.uuid (not enforced, models.md §3); one row per instance
    instance_uuid: Mapped[str] = mapped_column(String(36), nullable=False, unique=True)

    __carries__: ClassVar[Carries] = Carries(owner=Owner(
        "instances", lambda: Instance.uuid == InstanceInfoCache.instance_uuid), relations={
        "instance": Rel("instances",  # no delete filter
                        lambda: InstanceInfoCache.instance_uuid == Instance.uuid,
                        uselist=False),
    })


class InstanceMetadata(NovaBase, Base):
    __tablename__ = "instance_metadata"
    __table_args__ = (Index("ix_instance_metadata_instance_uuid", "instance_uuid"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str | None] = mapped_column(String(255))
    value: Mapped[str | None] = mapped_column(String(255))
    # refers to instances.uuid (not enforced, models.md §3)
    instance_uuid: Mapped[str] = mapped_column(String(36), nullable=False)

    __carries__: ClassVar[Carries] = Carries(owner=Owner(
        "instances", lambda: Instance.uuid == InstanceMetadata.instance_uuid), relations={
        "instance": Rel("instances", lambda: and_(
            InstanceMetadata.instance_uuid == Instance.uuid,
            InstanceMetadata.deleted == false()),
            uselist=False),
    })


class InstanceSystemMetadata(NovaBase, Base):
    __tablename__ = "instance_system_metadata"
    __table_args__ = (Index("ix_instance_system_metadata_instance_uuid", "instance_uuid"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str | None] = mapped_column(String(255))
    value: Mapped[str | None] = mapped_column(String(255))
    # refers to instances.uuid (not enforced, models.md §3)
    instance_uuid: Mapped[str] = mapped_column(String(36), nullable=False)

    __carries__: ClassVar[Carries] = Carries(owner=Owner(
        "instances", lambda: Instance.uuid == InstanceSystemMetadata.instance_uuid), relations={
        "instance": Rel("instances", lambda: and_(
            InstanceSystemMetadata.instance_uuid == Instance.uuid,
            InstanceSystemMetadata.deleted == false()),
            uselist=False),
    })


class InstanceFault(NovaBase, Base):
    __tablename__ = "instance_faults"
    __table_args__ = (Index("ix_instance_faults_instance_uuid_deleted_created_at",
                            "instance_uuid", "deleted", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # refers to instances.uuid; must not be enforced (faults for unknown uuids, §3)
    instance_uuid: Mapped[str] = mapped_column(String(36), nullable=False)
    code: Mapped[int] = mapped_column(Integer, nullable=False)
    message: Mapped[str | None] = mapped_column(String(255))
    details: Mapped[str | None] = mapped_column(Text)

    __carries__: ClassVar[Carries] = Carries(owner=Owner(
        "instances", lambda: Instance.uuid == InstanceFault.instance_uuid))


class BlockDeviceMapping(NovaBase, Base):
    __tablename__ = "block_device_mapping"
    __table_args__ = (
        Index("ix_block_device_mapping_instance_uuid", "instance_uuid"),
        Index("ix_block_device_mapping_instance_uuid_device_name",
              "instance_uuid", "device_name"),
        Index("ix_block_device_mapping_instance_uuid_virtual_name_device_name",
              "instance_uuid", "virtual_name", "device_name"),
        Index("ix_block_device_mapping_instance_uuid_volume_id", "instance_uuid", "volume_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # refers to instances.uuid (not enforced, models.md §3); String(36) as in the real
    # schema, not the model's Integer
    instance_uuid: Mapped[str] = mapped_column(String(36), nullable=False)
    device_name: Mapped[str] = mapped_column(String(255), nullable=False)
    delete_on_termination: Mapped[bool | None] = mapped_column(Boolean, default=False,
                                                               server_default=false())
    virtual_name: Mapped[str | None] = mapped_column(String(255))
    snapshot_id: Mapped[str | None] = mapped_column(String(36))
    volume_id: Mapped[str | None] = mapped_column(String(36))
    volume_size: Mapped[int | None] = mapped_column(Integer)
    no_device: Mapped[bool | None] = mapped_column(Boolean)
    connection_info: Mapped[str | None] = mapped_column(Text)

    __carries__: ClassVar[Carries] = Carries(owner=Owner(
        "instances", lambda: Instance.uuid == BlockDeviceMapping.instance_uuid), relations={
        "instance": Rel("instances", lambda: and_(
            BlockDeviceMapping.instance_uuid == Instance.uuid,
            BlockDeviceMapping.deleted == false()),
            uselist=False),
    })


class Migration(NovaBase, Base):
    __tablename__ = "migrations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_compute: Mapped[str | None] = mapped_column(String(255))
    dest_compute: Mapped[str | None] = mapped_column(String(255))
    dest_host: Mapped[str | None] = mapped_column(String(255))
    old_instance_type_id: Mapped[int | None] = mapped_column(Integer)
    new_instance_type_id: Mapped[int | None] = mapped_column(Integer)
    # refers to instances.uuid; must not be enforced (models.md §3)
    instance_uuid: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str | None] = mapped_column(String(255))


# --- flavors --------------------------------------------------------------------------------

class InstanceTypes(NovaBase, Base):
    __tablename__ = "instance_types"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str | None] = mapped_column(String(255))
    memory_mb: Mapped[int | None] = mapped_column(Integer)
    vcpus: Mapped[int | None] = mapped_column(Integer)
    root_gb: Mapped[int | None] = mapped_column(Integer)
    ephemeral_gb: Mapped[int | None] = mapped_column(Integer)
    flavorid: Mapped[str | None] = mapped_column(String(255))
    swap: Mapped[int] = mapped_column(Integer, nullable=False, default=0,
                                      server_default=_zero())
    rxtx_factor: Mapped[float] = mapped_column(Float, nullable=False, default=1,
                                               server_default=text("1"))
    vcpu_weight: Mapped[int | None] = mapped_column(Integer)
    disabled: Mapped[bool | None] = mapped_column(Boolean, default=False,
                                                  server_default=false())
    is_public: Mapped[bool | None] = mapped_column(Boolean, default=True,
                                                   server_default=true())

    __carries__: ClassVar[Carries] = Carries(
        owner=Owner(condition=lambda project: _flavor_visible(project)), relations={
        "instances": Rel("instances",  # no delete filter
                         lambda: Instance.instance_type_id == InstanceTypes.id),
        "extra_specs": Rel("instance_type_extra_specs", lambda: and_(
            InstanceTypeExtraSpecs.instance_type_id == InstanceTypes.id,
            InstanceTypeExtraSpecs.deleted == false())),
        "projects": Rel("instance_type_projects", lambda: and_(
            InstanceTypeProjects.instance_type_id == InstanceTypes.id,
            InstanceTypeProjects.deleted == false())),
    })


class InstanceTypeProjects(NovaBase, Base):
    __tablename__ = "instance_type_projects"
    __table_args__ = (Index("ix_instance_type_projects_instance_type_id",
                            "instance_type_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instance_type_id: Mapped[int] = mapped_column(Integer, ForeignKey("instance_types.id"),
                                                  nullable=False)
    project_id: Mapped[str | None] = mapped_column(String(255))

    __carries__: ClassVar[Carries] = Carries(relations={
        "instance_type": Rel("instance_types", lambda: and_(
            InstanceTypeProjects.instance_type_id == InstanceTypes.id,
            InstanceTypeProjects.deleted == false()),
            uselist=False),
    })


class InstanceTypeExtraSpecs(NovaBase, Base):
    __tablename__ = "instance_type_extra_specs"
    __table_args__ = (Index("ix_instance_type_extra_specs_instance_type_id_key",
                            "instance_type_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str | None] = mapped_column(String(255))
    value: Mapped[str | None] = mapped_column(String(255))
    instance_type_id: Mapped[int] = mapped_column(Integer, ForeignKey("instance_types.id"),
                                                  nullable=False)

    __carries__: ClassVar[Carries] = Carries(
        owner=Owner(condition=lambda project: ~exists(
            select(InstanceTypes.id).where(
                InstanceTypes.id == InstanceTypeExtraSpecs.instance_type_id,
                ~_flavor_visible(project)))), relations={
        "instance_type": Rel("instance_types", lambda: and_(
            InstanceTypeExtraSpecs.instance_type_id == InstanceTypes.id,
            InstanceTypeExtraSpecs.deleted == false()),
            uselist=False),
    })


def _flavor_visible(project: Any) -> ColumnElement[bool]:
    """A flavor a user context of ``project`` may reach (api-compute.md §1.1): a public
    one, or a private one whose access list names the project (an empty list names no
    user project)."""
    return or_(InstanceTypes.is_public.is_not(False),
               exists(select(InstanceTypeProjects.id).where(
                   InstanceTypeProjects.instance_type_id == InstanceTypes.id,
                   InstanceTypeProjects.project_id == project,
                   InstanceTypeProjects.deleted == false())))


# --- volumes and snapshots ------------------------------------------------------------------

class Volume(NovaBase, Base):
    __tablename__ = "volumes"
    __table_args__ = (Index("ix_volumes_instance_uuid", "instance_uuid"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    ec2_id: Mapped[int | None] = mapped_column(Integer)
    user_id: Mapped[str | None] = mapped_column(String(255))
    project_id: Mapped[str | None] = mapped_column(String(255))
    snapshot_id: Mapped[str | None] = mapped_column(String(36))
    host: Mapped[str | None] = mapped_column(String(255))
    size: Mapped[int | None] = mapped_column(Integer)
    availability_zone: Mapped[str | None] = mapped_column(String(255))
    instance_uuid: Mapped[str | None] = mapped_column(String(36))  # no FK in the model
    mountpoint: Mapped[str | None] = mapped_column(String(255))
    attach_time: Mapped[dt.datetime | None] = mapped_column(DateTime)
    status: Mapped[str | None] = mapped_column(String(255))
    attach_status: Mapped[str | None] = mapped_column(String(255))
    scheduled_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    launched_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    terminated_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    display_name: Mapped[str | None] = mapped_column(String(255))
    display_description: Mapped[str | None] = mapped_column(String(255))
    provider_location: Mapped[str | None] = mapped_column(String(255))
    provider_auth: Mapped[str | None] = mapped_column(String(255))
    volume_type_id: Mapped[int | None] = mapped_column(Integer)  # volume_types.id, no FK

    __carries__: ClassVar[Carries] = Carries(
        owner=OWN_PROJECT,
        relations={
            "volume_metadata": Rel("volume_metadata", lambda: and_(
                VolumeMetadata.volume_id == Volume.id, VolumeMetadata.deleted == false())),
            # unlike a flavor, a deleted volume type is not returned
            "volume_type": Rel("volume_types", lambda: and_(
                VolumeTypes.id == Volume.volume_type_id, VolumeTypes.deleted == false()),
                uselist=False),
            "iscsi_target": Rel("iscsi_targets", lambda: and_(
                IscsiTarget.volume_id == Volume.id, IscsiTarget.deleted == false()),
                uselist=False),
        },
        computed=lambda row, config: {"name": config.volume_name_template % row.get("id")},
    )


class VolumeMetadata(NovaBase, Base):
    __tablename__ = "volume_metadata"
    __table_args__ = (Index("ix_volume_metadata_volume_id", "volume_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str | None] = mapped_column(String(255))
    value: Mapped[str | None] = mapped_column(String(255))
    volume_id: Mapped[str] = mapped_column(String(36), ForeignKey("volumes.id"),
                                           nullable=False)

    __carries__: ClassVar[Carries] = Carries(owner=Owner(
        "volumes", lambda: Volume.id == VolumeMetadata.volume_id), relations={
        "volume": Rel("volumes", lambda: and_(
            VolumeMetadata.volume_id == Volume.id, VolumeMetadata.deleted == false()),
            uselist=False),
    })


class VolumeTypes(NovaBase, Base):
    __tablename__ = "volume_types"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str | None] = mapped_column(String(255))

    __carries__: ClassVar[Carries] = Carries(relations={
        "volumes": Rel("volumes", lambda: and_(
            VolumeTypes.id == Volume.volume_type_id, VolumeTypes.deleted == false())),
        "extra_specs": Rel("volume_type_extra_specs", lambda: and_(
            VolumeTypeExtraSpecs.volume_type_id == VolumeTypes.id,
            VolumeTypeExtraSpecs.deleted == false())),
    })


class VolumeTypeExtraSpecs(NovaBase, Base):
    __tablename__ = "volume_type_extra_specs"
    __table_args__ = (Index("ix_volume_type_extra_specs_volume_type_id", "volume_type_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str | None] = mapped_column(String(255))
    value: Mapped[str | None] = mapped_column(String(255))
    # refers to volume_types.id; not enforced: update_or_create does not check the type
    volume_type_id: Mapped[int] = mapped_column(Integer, nullable=False)

    __carries__: ClassVar[Carries] = Carries(relations={
        "volume_type": Rel("volume_types", lambda: and_(
            VolumeTypeExtraSpecs.volume_type_id == VolumeTypes.id,
            VolumeTypeExtraSpecs.deleted == false()), uselist=False),
    })


class IscsiTarget(NovaBase, Base):
    __tablename__ = "iscsi_targets"
    __table_args__ = (UniqueConstraint("target_num", "host"),
                      Index("ix_iscsi_targets_host", "host"),
                      Index("ix_iscsi_targets_host_volume_id_deleted",
                            "host", "volume_id", "deleted"),
                      Index("ix_iscsi_targets_volume_id", "volume_id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    target_num: Mapped[int | None] = mapped_column(Integer)
    host: Mapped[str | None] = mapped_column(String(255))
    volume_id: Mapped[str | None] = mapped_column(String(36), ForeignKey("volumes.id"))

    __carries__: ClassVar[Carries] = Carries(relations={
        "volume": Rel("volumes", lambda: and_(
            Volume.id == IscsiTarget.volume_id, IscsiTarget.deleted == false()),
            uselist=False),
    })


class Snapshot(NovaBase, Base):
    __tablename__ = "snapshots"
    __table_args__ = (Index("ix_snapshots_volume_id", "volume_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[str | None] = mapped_column(String(255))
    project_id: Mapped[str | None] = mapped_column(String(255))
    volume_id: Mapped[str | None] = mapped_column(String(36))
    status: Mapped[str | None] = mapped_column(String(255))
    progress: Mapped[str | None] = mapped_column(String(255))
    volume_size: Mapped[int | None] = mapped_column(Integer)
    display_name: Mapped[str | None] = mapped_column(String(255))
    display_description: Mapped[str | None] = mapped_column(String(255))

    __carries__: ClassVar[Carries] = Carries(owner=OWN_PROJECT, computed=lambda row, config: {
        "name": config.snapshot_name_template % row.get("id"),
        "volume_name": config.volume_name_template % row.get("volume_id")})


class SMFlavors(NovaBase, Base):
    __tablename__ = "sm_flavors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    label: Mapped[str | None] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(String(255))


class SMBackendConf(NovaBase, Base):
    __tablename__ = "sm_backend_config"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # refers to sm_flavors.id; not enforced: Nova's test uses a flavor that does not
    # exist, and sm_flavor_delete hard-deletes
    flavor_id: Mapped[int] = mapped_column(Integer, nullable=False)
    sr_uuid: Mapped[str | None] = mapped_column(String(255))
    sr_type: Mapped[str | None] = mapped_column(String(255))
    config_params: Mapped[str | None] = mapped_column(String(2047))


class SMVolume(NovaBase, Base):
    __tablename__ = "sm_volume"

    id: Mapped[str] = mapped_column(String(36), ForeignKey("volumes.id"), primary_key=True)
    # refers to sm_backend_config.id; not enforced: sm_backend_conf_delete hard-deletes
    backend_id: Mapped[int] = mapped_column(Integer, nullable=False)
    vdi_uuid: Mapped[str | None] = mapped_column(String(255))

    __carries__: ClassVar[Carries] = Carries(owner=Owner(
        "volumes", lambda: Volume.id == SMVolume.id))


# --- quotas ---------------------------------------------------------------------------------

class Quota(NovaBase, Base):
    __tablename__ = "quotas"
    __table_args__ = (Index("ix_quotas_project_id", "project_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[str | None] = mapped_column(String(255))
    resource: Mapped[str | None] = mapped_column(String(255))
    hard_limit: Mapped[int | None] = mapped_column(Integer)

    __carries__: ClassVar[Carries] = Carries(owner=OWN_PROJECT)


class QuotaClass(NovaBase, Base):
    __tablename__ = "quota_classes"
    __table_args__ = (Index("ix_quota_classes_class_name", "class_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    class_name: Mapped[str | None] = mapped_column(String(255))
    resource: Mapped[str | None] = mapped_column(String(255))
    hard_limit: Mapped[int | None] = mapped_column(Integer)


class QuotaUsage(NovaBase, Base):
    __tablename__ = "quota_usages"
    __table_args__ = (Index("ix_quota_usages_project_id", "project_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[str | None] = mapped_column(String(255))
    resource: Mapped[str | None] = mapped_column(String(255))
    in_use: Mapped[int | None] = mapped_column(Integer)
    reserved: Mapped[int | None] = mapped_column(Integer)
    until_refresh: Mapped[int | None] = mapped_column(Integer)

    __carries__: ClassVar[Carries] = Carries(owner=OWN_PROJECT, computed=lambda row, _: {
        "total": (row.get("in_use") or 0) + (row.get("reserved") or 0)})


class Reservation(NovaBase, Base):
    __tablename__ = "reservations"
    __table_args__ = (Index("ix_reservations_project_id", "project_id"),
                      Index("ix_reservations_uuid", "uuid"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), nullable=False)
    usage_id: Mapped[int] = mapped_column(Integer, ForeignKey("quota_usages.id"),
                                          nullable=False)
    project_id: Mapped[str | None] = mapped_column(String(255))
    resource: Mapped[str | None] = mapped_column(String(255))
    delta: Mapped[int | None] = mapped_column(Integer)
    expire: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False)

    __carries__: ClassVar[Carries] = Carries(owner=OWN_PROJECT, relations={
        "usage": Rel("quota_usages", lambda: and_(  # no reverse
            QuotaUsage.id == Reservation.usage_id, QuotaUsage.deleted == false()),
            uselist=False),
    })


# --- security groups and firewall -----------------------------------------------------------

class SecurityGroup(NovaBase, Base):
    __tablename__ = "security_groups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str | None] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(String(255))
    user_id: Mapped[str | None] = mapped_column(String(255))
    project_id: Mapped[str | None] = mapped_column(String(255))

    __carries__: ClassVar[Carries] = Carries(
        owner=OWN_PROJECT,
        relations={
            "instances": Rel(
                "instances",
                lambda: and_(_SGA.security_group_id == SecurityGroup.id,
                             _SGA.deleted == false(), SecurityGroup.deleted == false()),
                through="security_group_instance_association",
                through_on=lambda: and_(_SGA.instance_uuid == Instance.uuid,
                                        Instance.deleted == false())),
            "rules": Rel("security_group_rules", lambda: and_(
                SecurityGroupIngressRule.parent_group_id == SecurityGroup.id,
                SecurityGroupIngressRule.deleted == false())),
        },
        always=("rules", "instances"),
    )


class SecurityGroupInstanceAssociation(NovaBase, Base):
    __tablename__ = "security_group_instance_association"
    __table_args__ = (
        Index("ix_security_group_instance_association_instance_uuid", "instance_uuid"),
        Index("ix_security_group_instance_association_security_group_id",
              "security_group_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    security_group_id: Mapped[int | None] = mapped_column(Integer,
                                                          ForeignKey("security_groups.id"))
    # refers to instances.uuid (not enforced, models.md §3)
    instance_uuid: Mapped[str | None] = mapped_column(String(36))

    __carries__: ClassVar[Carries] = Carries(owner=Owner(
        "security_groups",
        lambda: SecurityGroup.id == SecurityGroupInstanceAssociation.security_group_id))


_SGA = SecurityGroupInstanceAssociation


class SecurityGroupIngressRule(NovaBase, Base):
    __tablename__ = "security_group_rules"
    __table_args__ = (Index("ix_security_group_rules_parent_group_id", "parent_group_id"),
                      Index("ix_security_group_rules_group_id", "group_id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    parent_group_id: Mapped[int | None] = mapped_column(Integer,
                                                        ForeignKey("security_groups.id"))
    protocol: Mapped[str | None] = mapped_column(String(5))
    from_port: Mapped[int | None] = mapped_column(Integer)
    to_port: Mapped[int | None] = mapped_column(Integer)
    cidr: Mapped[str | None] = mapped_column(String(255))
    group_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("security_groups.id"))

    __carries__: ClassVar[Carries] = Carries(
        owner=Owner(
        "security_groups", lambda: SecurityGroup.id == SecurityGroupIngressRule.parent_group_id),
        relations={
            "parent_group": Rel("security_groups", lambda: and_(
                SecurityGroupIngressRule.parent_group_id == SecurityGroup.id,
                SecurityGroupIngressRule.deleted == false()), uselist=False),
            "grantee_group": Rel("security_groups", lambda: and_(  # no reverse
                SecurityGroupIngressRule.group_id == SecurityGroup.id,
                SecurityGroupIngressRule.deleted == false()), uselist=False),
        },
        # what the firewall drivers walk: rule['grantee_group']['instances']
        always=("grantee_group", "grantee_group.instances"),
    )


class ProviderFirewallRule(NovaBase, Base):
    __tablename__ = "provider_fw_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    protocol: Mapped[str | None] = mapped_column(String(5))
    from_port: Mapped[int | None] = mapped_column(Integer)
    to_port: Mapped[int | None] = mapped_column(Integer)
    cidr: Mapped[str | None] = mapped_column(String(255))


class KeyPair(NovaBase, Base):
    __tablename__ = "key_pairs"
    __table_args__ = (Index("ix_key_pairs_user_id_name", "user_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str | None] = mapped_column(String(255))
    user_id: Mapped[str | None] = mapped_column(String(255))
    fingerprint: Mapped[str | None] = mapped_column(String(255))
    public_key: Mapped[str | None] = mapped_column(Text)


# --- networking -----------------------------------------------------------------------------

class Network(NovaBase, Base):
    __tablename__ = "networks"
    __table_args__ = (
        UniqueConstraint("vpn_public_address", "vpn_public_port"),
        Index("ix_networks_bridge_deleted", "bridge", "deleted"),
        Index("ix_networks_host", "host"),
        Index("ix_networks_project_id_deleted", "project_id", "deleted"),
        Index("ix_networks_uuid_project_id_deleted", "uuid", "project_id", "deleted"),
        Index("ix_networks_vlan_deleted", "vlan", "deleted"),
        Index("ix_networks_cidr_v6", "cidr_v6"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    label: Mapped[str | None] = mapped_column(String(255))
    injected: Mapped[bool | None] = mapped_column(Boolean, default=False,
                                                  server_default=false())
    cidr: Mapped[str | None] = mapped_column(String(255), unique=True)
    cidr_v6: Mapped[str | None] = mapped_column(String(255), unique=True)
    multi_host: Mapped[bool | None] = mapped_column(Boolean, default=False,
                                                    server_default=false())
    gateway_v6: Mapped[str | None] = mapped_column(String(255))
    netmask_v6: Mapped[str | None] = mapped_column(String(255))
    netmask: Mapped[str | None] = mapped_column(String(255))
    bridge: Mapped[str | None] = mapped_column(String(255))
    bridge_interface: Mapped[str | None] = mapped_column(String(255))
    gateway: Mapped[str | None] = mapped_column(String(255))
    broadcast: Mapped[str | None] = mapped_column(String(255))
    dns1: Mapped[str | None] = mapped_column(String(255))
    dns2: Mapped[str | None] = mapped_column(String(255))
    vlan: Mapped[int | None] = mapped_column(Integer)
    vpn_public_address: Mapped[str | None] = mapped_column(String(255))
    vpn_public_port: Mapped[int | None] = mapped_column(Integer)
    vpn_private_address: Mapped[str | None] = mapped_column(String(255))
    dhcp_start: Mapped[str | None] = mapped_column(String(255))
    rxtx_base: Mapped[int | None] = mapped_column(Integer)
    project_id: Mapped[str | None] = mapped_column(String(255))
    priority: Mapped[int | None] = mapped_column(Integer)
    host: Mapped[str | None] = mapped_column(String(255))
    uuid: Mapped[str | None] = mapped_column(String(36))

    __carries__: ClassVar[Carries] = Carries(owner=OWN_PROJECT)


class VirtualInterface(NovaBase, Base):
    __tablename__ = "virtual_interfaces"
    __table_args__ = (Index("ix_virtual_interfaces_instance_uuid", "instance_uuid"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    address: Mapped[str | None] = mapped_column(String(255), unique=True)
    # models.md says NOT NULL, but a VIF created without a network must succeed
    # (api-network-quota-storage.md §3.4, TESTED), as it did on the migrated schema
    network_id: Mapped[int | None] = mapped_column(Integer)
    instance_uuid: Mapped[str] = mapped_column(String(36), nullable=False)  # no FK
    uuid: Mapped[str | None] = mapped_column(String(36))

    __carries__: ClassVar[Carries] = Carries(owner=Owner(
        "instances", lambda: Instance.uuid == VirtualInterface.instance_uuid))


class FixedIp(NovaBase, Base):
    __tablename__ = "fixed_ips"
    __table_args__ = (
        Index("ix_fixed_ips_host", "host"),
        Index("ix_fixed_ips_network_id_host_deleted", "network_id", "host", "deleted"),
        Index("ix_fixed_ips_address_reserved_network_id_deleted",
              "address", "reserved", "network_id", "deleted"),
        Index("ix_fixed_ips_address", "address"),
        Index("ix_fixed_ips_instance_uuid", "instance_uuid"),
        Index("ix_fixed_ips_virtual_interface_id", "virtual_interface_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    address: Mapped[str | None] = mapped_column(String(255))
    # no FKs: network_id may name a missing network (§3.3), the others are model-free
    network_id: Mapped[int | None] = mapped_column(Integer)
    virtual_interface_id: Mapped[int | None] = mapped_column(Integer)
    instance_uuid: Mapped[str | None] = mapped_column(String(36))
    allocated: Mapped[bool | None] = mapped_column(Boolean, default=False,
                                                   server_default=false())
    leased: Mapped[bool | None] = mapped_column(Boolean, default=False,
                                                server_default=false())
    reserved: Mapped[bool | None] = mapped_column(Boolean, default=False,
                                                  server_default=false())
    host: Mapped[str | None] = mapped_column(String(255))

    __carries__: ClassVar[Carries] = Carries(owner=Owner(
        "instances", lambda: Instance.uuid == FixedIp.instance_uuid))


class FloatingIp(NovaBase, Base):
    __tablename__ = "floating_ips"
    __table_args__ = (
        Index("ix_floating_ips_host", "host"),
        Index("ix_floating_ips_project_id", "project_id"),
        Index("ix_floating_ips_pool_deleted_fixed_ip_id_project_id",
              "pool", "deleted", "fixed_ip_id", "project_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    address: Mapped[str | None] = mapped_column(String(255))
    fixed_ip_id: Mapped[int | None] = mapped_column(Integer)
    project_id: Mapped[str | None] = mapped_column(String(255))
    host: Mapped[str | None] = mapped_column(String(255))
    auto_assigned: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False,
                                                server_default=false())
    pool: Mapped[str | None] = mapped_column(String(255))
    interface: Mapped[str | None] = mapped_column(String(255))

    __carries__: ClassVar[Carries] = Carries(owner=OWN_PROJECT)


class DNSDomain(NovaBase, Base):
    __tablename__ = "dns_domains"
    __table_args__ = (Index("ix_dns_domains_domain_deleted", "domain", "deleted"),)

    domain: Mapped[str] = mapped_column(String(512), primary_key=True)
    scope: Mapped[str | None] = mapped_column(String(255))
    availability_zone: Mapped[str | None] = mapped_column(String(255))
    project_id: Mapped[str | None] = mapped_column(String(255))


# --- consoles -------------------------------------------------------------------------------

class ConsolePool(NovaBase, Base):
    __tablename__ = "console_pools"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    address: Mapped[str | None] = mapped_column(String(255))
    username: Mapped[str | None] = mapped_column(String(255))
    password: Mapped[str | None] = mapped_column(String(255))
    console_type: Mapped[str | None] = mapped_column(String(255))
    public_hostname: Mapped[str | None] = mapped_column(String(255))
    host: Mapped[str | None] = mapped_column(String(255))
    compute_host: Mapped[str | None] = mapped_column(String(255))

    __carries__: ClassVar[Carries] = Carries(relations={
        "consoles": Rel("consoles", lambda: Console.pool_id == ConsolePool.id),  # no filter
    })


class Console(NovaBase, Base):
    __tablename__ = "consoles"
    __table_args__ = (Index("ix_consoles_instance_uuid", "instance_uuid"),
                      Index("ix_consoles_pool_id", "pool_id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instance_name: Mapped[str | None] = mapped_column(String(255))
    instance_uuid: Mapped[str | None] = mapped_column(String(36))  # no FK in the model
    password: Mapped[str | None] = mapped_column(String(255))
    port: Mapped[int | None] = mapped_column(Integer)
    pool_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("console_pools.id"))

    __carries__: ClassVar[Carries] = Carries(owner=Owner(
        "instances", lambda: Instance.uuid == Console.instance_uuid), relations={
        "pool": Rel("console_pools", lambda: Console.pool_id == ConsolePool.id,  # no filter
                    uselist=False),
    })


# --- aggregates -----------------------------------------------------------------------------

class Aggregate(NovaBase, Base):
    __tablename__ = "aggregates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str | None] = mapped_column(String(255))  # not unique (§3)
    availability_zone: Mapped[str] = mapped_column(String(255), nullable=False)

    # a deleted aggregate has no hosts and no metadata: both joins test aggregates.deleted
    __carries__: ClassVar[Carries] = Carries(
        relations={
            "_hosts": Rel("aggregate_hosts", lambda: and_(
                AggregateHost.aggregate_id == Aggregate.id, AggregateHost.deleted == false(),
                Aggregate.deleted == false())),
            "_metadata": Rel("aggregate_metadata", lambda: and_(
                AggregateMetadata.aggregate_id == Aggregate.id,
                AggregateMetadata.deleted == false(), Aggregate.deleted == false())),
        },
        computed=_aggregate_computed,
    )


class AggregateHost(NovaBase, Base):
    __tablename__ = "aggregate_hosts"
    __table_args__ = (Index("ix_aggregate_hosts_host", "host"),
                      Index("ix_aggregate_hosts_aggregate_id", "aggregate_id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    host: Mapped[str | None] = mapped_column(String(255))  # not unique (§3)
    aggregate_id: Mapped[int] = mapped_column(Integer, ForeignKey("aggregates.id"),
                                              nullable=False)

    __carries__: ClassVar[Carries] = Carries(relations={
        "aggregates": Rel("aggregates", lambda: and_(
            AggregateHost.aggregate_id == Aggregate.id, AggregateHost.deleted == false(),
            Aggregate.deleted == false())),
    })


class AggregateMetadata(NovaBase, Base):
    __tablename__ = "aggregate_metadata"
    __table_args__ = (Index("ix_aggregate_metadata_key", "key"),
                      Index("ix_aggregate_metadata_aggregate_id", "aggregate_id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(255), nullable=False)
    value: Mapped[str] = mapped_column(String(255), nullable=False)
    aggregate_id: Mapped[int] = mapped_column(Integer, ForeignKey("aggregates.id"),
                                              nullable=False)

    __carries__: ClassVar[Carries] = Carries(relations={
        "aggregates": Rel("aggregates", lambda: and_(
            AggregateMetadata.aggregate_id == Aggregate.id, AggregateMetadata.deleted == false(),
            Aggregate.deleted == false())),
    })


# --- the rest -------------------------------------------------------------------------------

class AgentBuild(NovaBase, Base):
    __tablename__ = "agent_builds"
    __table_args__ = (Index("ix_agent_builds_hypervisor_os_architecture",
                            "hypervisor", "os", "architecture"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    hypervisor: Mapped[str | None] = mapped_column(String(255))
    os: Mapped[str | None] = mapped_column(String(255))
    architecture: Mapped[str | None] = mapped_column(String(255))
    version: Mapped[str | None] = mapped_column(String(255))
    url: Mapped[str | None] = mapped_column(String(255))
    md5hash: Mapped[str | None] = mapped_column(String(255))


class BandwidthUsage(NovaBase, Base):
    __tablename__ = "bw_usage_cache"
    __table_args__ = (Index("ix_bw_usage_cache_uuid_start_period", "uuid", "start_period"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), nullable=False)  # instance uuid, no FK
    mac: Mapped[str] = mapped_column(String(255), nullable=False)
    start_period: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False)
    last_refreshed: Mapped[dt.datetime | None] = mapped_column(DateTime)
    bw_in: Mapped[int | None] = mapped_column(BigInteger)
    bw_out: Mapped[int | None] = mapped_column(BigInteger)

    __carries__: ClassVar[Carries] = Carries(owner=Owner(
        "instances", lambda: Instance.uuid == BandwidthUsage.uuid))


class S3Image(NovaBase, Base):
    __tablename__ = "s3_images"
    __table_args__ = (Index("ix_s3_images_uuid", "uuid"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), nullable=False)


class VolumeIdMapping(NovaBase, Base):
    __tablename__ = "volume_id_mappings"
    __table_args__ = (Index("ix_volume_id_mappings_uuid", "uuid"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), nullable=False)

    __carries__: ClassVar[Carries] = Carries(owner=Owner(
        "volumes", lambda: Volume.id == VolumeIdMapping.uuid))


class SnapshotIdMapping(NovaBase, Base):
    __tablename__ = "snapshot_id_mappings"
    __table_args__ = (Index("ix_snapshot_id_mappings_uuid", "uuid"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), nullable=False)

    __carries__: ClassVar[Carries] = Carries(owner=Owner(
        "snapshots", lambda: Snapshot.id == SnapshotIdMapping.uuid))


class InstanceIdMapping(NovaBase, Base):
    __tablename__ = "instance_id_mappings"
    __table_args__ = (Index("ix_instance_id_mappings_uuid", "uuid"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), nullable=False)

    __carries__: ClassVar[Carries] = Carries(owner=Owner(
        "instances", lambda: Instance.uuid == InstanceIdMapping.uuid))


class TaskLog(NovaBase, Base):
    __tablename__ = "task_log"
    __table_args__ = (Index("ix_task_log_host", "host"),
                      Index("ix_task_log_period_beginning", "period_beginning"),
                      Index("ix_task_log_period_ending", "period_ending"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_name: Mapped[str] = mapped_column(String(255), nullable=False)
    state: Mapped[str] = mapped_column(String(255), nullable=False)
    # host and the periods are NOT NULL as in the migrated schema (the model has them NULL)
    host: Mapped[str] = mapped_column(String(255), nullable=False)
    period_beginning: Mapped[str] = mapped_column(String(255), nullable=False,
                                                  default=_now_text)
    period_ending: Mapped[str] = mapped_column(String(255), nullable=False,
                                               default=_now_text)
    message: Mapped[str] = mapped_column(String(255), nullable=False)
    task_items: Mapped[int | None] = mapped_column(Integer, default=0,
                                                   server_default=_zero())
    errors: Mapped[int | None] = mapped_column(Integer, default=0, server_default=_zero())


class DatabaseSnapshot(NovaBase, Base):
    """A provider's database snapshot (database-snapshots.md)."""

    __tablename__ = "database_snapshots"
    __table_args__ = (
        Index("ix_database_snapshots_resource_id", "resource_id", unique=True),
        # the conventional name would exceed PostgreSQL's 63 characters; unique among
        # live rows, so two racing creates of one provider snapshot cannot both land
        Index("ix_database_snapshots_provider_key",
              "organization_service_id", "region_name", "snapshot_id", unique=True,
              postgresql_where=text("deleted = false"), sqlite_where=text("deleted = 0")),
        Index("ix_database_snapshots_instance_resource_id", "instance_resource_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    resource_id: Mapped[str] = mapped_column(String(64), nullable=False)
    organization_service_id: Mapped[int] = mapped_column(Integer, nullable=False)
    region_name: Mapped[str] = mapped_column(String(64), nullable=False)
    # unique with the two above among non-deleted rows only: checked by the API
    snapshot_id: Mapped[str] = mapped_column(String(255), nullable=False)
    name: Mapped[str | None] = mapped_column(String(255))
    instance_resource_id: Mapped[str | None] = mapped_column(String(64))  # may dangle
    snapshot_type: Mapped[str] = mapped_column(String(16), nullable=False, default="manual",
                                               server_default="manual")
    state: Mapped[str | None] = mapped_column(String(32))
    availability_zone: Mapped[str | None] = mapped_column(String(64))
    create_time: Mapped[dt.datetime | None] = mapped_column(DateTime)
    port: Mapped[int | None] = mapped_column(Integer)
    engine: Mapped[str | None] = mapped_column(String(64))
    engine_version: Mapped[str | None] = mapped_column(String(64))
    size: Mapped[int | None] = mapped_column(Integer)
    progress: Mapped[int | None] = mapped_column(Integer)
    master_username: Mapped[str | None] = mapped_column(String(128))
    license: Mapped[str | None] = mapped_column(String(64))
    public: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False,
                                         server_default=false())


# --- registries -----------------------------------------------------------------------------

MODELS: dict[str, type[Base]] = {
    cls.__tablename__: cls for cls in (
        Service, ComputeNode, ComputeNodeStat, Certificate, Instance, InstanceInfoCache,
        InstanceMetadata, InstanceSystemMetadata, InstanceFault, BlockDeviceMapping,
        Migration, InstanceTypes, InstanceTypeProjects, InstanceTypeExtraSpecs, Volume,
        VolumeMetadata, VolumeTypes, VolumeTypeExtraSpecs, IscsiTarget, Snapshot, SMFlavors,
        SMBackendConf, SMVolume, Quota, QuotaClass, QuotaUsage, Reservation, SecurityGroup,
        SecurityGroupInstanceAssociation, SecurityGroupIngressRule, ProviderFirewallRule,
        KeyPair, Network, VirtualInterface, FixedIp, FloatingIp, DNSDomain, ConsolePool,
        Console, Aggregate, AggregateHost, AggregateMetadata, AgentBuild, BandwidthUsage,
        S3Image, VolumeIdMapping, SnapshotIdMapping, InstanceIdMapping, TaskLog,
        DatabaseSnapshot,
    )
}

TABLES: dict[str, Table] = {name: cast(Table, cls.__table__) for name, cls in MODELS.items()}


@functools.cache
def carries(table: Table) -> Carries:
    """What rows of ``table`` carry beyond their columns (its ``__carries__``)."""
    model = MODELS.get(table.name)
    return getattr(model, "__carries__", NOTHING) if model is not None else NOTHING


from conductor.db import rpc_tables as _rpc_tables  # noqa: E402, F401
