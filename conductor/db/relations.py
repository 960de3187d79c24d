"""The relationships of models.md §2, registered with :func:`~conductor.db.base.relation`.

Each join condition is reproduced exactly as models.md states it, including which side's
``deleted = false`` is part of the join and which relationships have no delete filter; the
loaders in :mod:`conductor.db.session` rely on them (a pruned stat, a deleted aggregate's
hosts, a deleted instance's security groups must all vanish from nested results).
Imported by :mod:`conductor.db.models`; there is nothing to call.
"""

from __future__ import annotations

from sqlalchemy import and_, false

from conductor.db.base import relation
from conductor.db.models import (
    Aggregate,
    AggregateHost,
    AggregateMetadata,
    BlockDeviceMapping,
    ComputeNode,
    ComputeNodeStat,
    Console,
    ConsolePool,
    Instance,
    InstanceInfoCache,
    InstanceMetadata,
    InstanceSystemMetadata,
    InstanceTypeExtraSpecs,
    InstanceTypeProjects,
    InstanceTypes,
    IscsiTarget,
    QuotaUsage,
    Reservation,
    SecurityGroup,
    SecurityGroupIngressRule,
    SecurityGroupInstanceAssociation,
    Service,
    Volume,
    VolumeMetadata,
    VolumeTypeExtraSpecs,
    VolumeTypes,
)

_SGA = SecurityGroupInstanceAssociation

relation(Service, "compute_node", ComputeNode,
         lambda: and_(ComputeNode.service_id == Service.id, ComputeNode.deleted == false()))
relation(ComputeNode, "service", Service,
         lambda: and_(Service.id == ComputeNode.service_id, ComputeNode.deleted == false()),
         uselist=False)
relation(ComputeNode, "stats", ComputeNodeStat,
         lambda: and_(ComputeNodeStat.compute_node_id == ComputeNode.id,
                      ComputeNodeStat.deleted == false()))
# the stat's side of the same relationship is (confusingly) also called "stats"
relation(ComputeNodeStat, "stats", ComputeNode,
         lambda: and_(ComputeNodeStat.compute_node_id == ComputeNode.id,
                      ComputeNodeStat.deleted == false()),
         uselist=False)

relation(Instance, "info_cache", InstanceInfoCache,  # no delete filter
         lambda: InstanceInfoCache.instance_uuid == Instance.uuid, uselist=False)
relation(InstanceInfoCache, "instance", Instance,  # no delete filter
         lambda: InstanceInfoCache.instance_uuid == Instance.uuid, uselist=False)
relation(Instance, "instance_type", InstanceTypes,  # no delete filter
         lambda: InstanceTypes.id == Instance.instance_type_id, uselist=False)
relation(InstanceTypes, "instances", Instance,  # no delete filter
         lambda: Instance.instance_type_id == InstanceTypes.id)
relation(Instance, "metadata", InstanceMetadata,
         lambda: and_(InstanceMetadata.instance_uuid == Instance.uuid,
                      InstanceMetadata.deleted == false()))
relation(InstanceMetadata, "instance", Instance,
         lambda: and_(InstanceMetadata.instance_uuid == Instance.uuid,
                      InstanceMetadata.deleted == false()),
         uselist=False)
relation(Instance, "system_metadata", InstanceSystemMetadata,
         lambda: and_(InstanceSystemMetadata.instance_uuid == Instance.uuid,
                      InstanceSystemMetadata.deleted == false()))
relation(InstanceSystemMetadata, "instance", Instance,
         lambda: and_(InstanceSystemMetadata.instance_uuid == Instance.uuid,
                      InstanceSystemMetadata.deleted == false()),
         uselist=False)
relation(Instance, "block_device_mapping", BlockDeviceMapping,
         lambda: and_(BlockDeviceMapping.instance_uuid == Instance.uuid,
                      BlockDeviceMapping.deleted == false()))
relation(BlockDeviceMapping, "instance", Instance,
         lambda: and_(BlockDeviceMapping.instance_uuid == Instance.uuid,
                      BlockDeviceMapping.deleted == false()),
         uselist=False)

# many-to-many: association live, group live, instance live (all five conditions)
relation(Instance, "security_groups", SecurityGroup,
         lambda: and_(_SGA.instance_uuid == Instance.uuid, _SGA.deleted == false(),
                      Instance.deleted == false()),
         secondary=_SGA,
         secondary_join=lambda: and_(_SGA.security_group_id == SecurityGroup.id,
                                     SecurityGroup.deleted == false()))
relation(SecurityGroup, "instances", Instance,
         lambda: and_(_SGA.security_group_id == SecurityGroup.id, _SGA.deleted == false(),
                      SecurityGroup.deleted == false()),
         secondary=_SGA,
         secondary_join=lambda: and_(_SGA.instance_uuid == Instance.uuid,
                                     Instance.deleted == false()))
relation(SecurityGroup, "rules", SecurityGroupIngressRule,
         lambda: and_(SecurityGroupIngressRule.parent_group_id == SecurityGroup.id,
                      SecurityGroupIngressRule.deleted == false()))
relation(SecurityGroupIngressRule, "parent_group", SecurityGroup,
         lambda: and_(SecurityGroupIngressRule.parent_group_id == SecurityGroup.id,
                      SecurityGroupIngressRule.deleted == false()),
         uselist=False)
relation(SecurityGroupIngressRule, "grantee_group", SecurityGroup,  # no reverse
         lambda: and_(SecurityGroupIngressRule.group_id == SecurityGroup.id,
                      SecurityGroupIngressRule.deleted == false()),
         uselist=False)

relation(InstanceTypes, "extra_specs", InstanceTypeExtraSpecs,
         lambda: and_(InstanceTypeExtraSpecs.instance_type_id == InstanceTypes.id,
                      InstanceTypeExtraSpecs.deleted == false()))
relation(InstanceTypeExtraSpecs, "instance_type", InstanceTypes,
         lambda: and_(InstanceTypeExtraSpecs.instance_type_id == InstanceTypes.id,
                      InstanceTypeExtraSpecs.deleted == false()),
         uselist=False)
relation(InstanceTypes, "projects", InstanceTypeProjects,
         lambda: and_(InstanceTypeProjects.instance_type_id == InstanceTypes.id,
                      InstanceTypeProjects.deleted == false()))
relation(InstanceTypeProjects, "instance_type", InstanceTypes,
         lambda: and_(InstanceTypeProjects.instance_type_id == InstanceTypes.id,
                      InstanceTypeProjects.deleted == false()),
         uselist=False)

relation(Volume, "volume_metadata", VolumeMetadata,
         lambda: and_(VolumeMetadata.volume_id == Volume.id,
                      VolumeMetadata.deleted == false()))
relation(VolumeMetadata, "volume", Volume,
         lambda: and_(VolumeMetadata.volume_id == Volume.id,
                      VolumeMetadata.deleted == false()),
         uselist=False)
# unlike a flavor, a deleted volume type is not returned
relation(Volume, "volume_type", VolumeTypes,
         lambda: and_(VolumeTypes.id == Volume.volume_type_id, VolumeTypes.deleted == false()),
         uselist=False)
relation(VolumeTypes, "volumes", Volume,
         lambda: and_(VolumeTypes.id == Volume.volume_type_id, VolumeTypes.deleted == false()))
relation(VolumeTypes, "extra_specs", VolumeTypeExtraSpecs,
         lambda: and_(VolumeTypeExtraSpecs.volume_type_id == VolumeTypes.id,
                      VolumeTypeExtraSpecs.deleted == false()))
relation(VolumeTypeExtraSpecs, "volume_type", VolumeTypes,
         lambda: and_(VolumeTypeExtraSpecs.volume_type_id == VolumeTypes.id,
                      VolumeTypeExtraSpecs.deleted == false()),
         uselist=False)
relation(Volume, "iscsi_target", IscsiTarget,
         lambda: and_(IscsiTarget.volume_id == Volume.id, IscsiTarget.deleted == false()),
         uselist=False)
relation(IscsiTarget, "volume", Volume,
         lambda: and_(Volume.id == IscsiTarget.volume_id, IscsiTarget.deleted == false()),
         uselist=False)

relation(Reservation, "usage", QuotaUsage,  # no reverse
         lambda: and_(QuotaUsage.id == Reservation.usage_id, QuotaUsage.deleted == false()),
         uselist=False)

relation(ConsolePool, "consoles", Console,  # no delete filter
         lambda: Console.pool_id == ConsolePool.id)
relation(Console, "pool", ConsolePool,  # no delete filter
         lambda: Console.pool_id == ConsolePool.id, uselist=False)

# a deleted aggregate has no hosts and no metadata: both joins test aggregates.deleted
relation(Aggregate, "_hosts", AggregateHost,
         lambda: and_(AggregateHost.aggregate_id == Aggregate.id,
                      AggregateHost.deleted == false(), Aggregate.deleted == false()))
relation(AggregateHost, "aggregates", Aggregate,
         lambda: and_(AggregateHost.aggregate_id == Aggregate.id,
                      AggregateHost.deleted == false(), Aggregate.deleted == false()))
relation(Aggregate, "_metadata", AggregateMetadata,
         lambda: and_(AggregateMetadata.aggregate_id == Aggregate.id,
                      AggregateMetadata.deleted == false(), Aggregate.deleted == false()))
relation(AggregateMetadata, "aggregates", Aggregate,
         lambda: and_(AggregateMetadata.aggregate_id == Aggregate.id,
                      AggregateMetadata.deleted == false(), Aggregate.deleted == false()))
