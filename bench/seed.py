"""Realistic data for the benchmark, written fast with PostgreSQL COPY (asyncpg).

Column names come from the models (``conductor.db.models.TABLES``); every value is of the
Python type the column takes, so asyncpg's binary COPY accepts it.  A :class:`Seeder`
keeps its own id counters, so instances can be added in several steps (``--growth``).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import random
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import asyncpg

from conductor.db.models import TABLES

HOSTS = 200
PROJECTS = 10
USERS_PER_PROJECT = 5
GROUPS_PER_PROJECT = 50
RULES_PER_GROUP = 3
STATS_PER_NODE = 6
CHUNK = 10_000  # instances per COPY batch

# What the growth mode's fixed-size probes look for (none of the regular rows match).
PROBE_HOST = "probe-host"
PROBE_PROJECT = "probe-project"
PROBE_INSTANCES = 50

FLAVORS = [  # name, memory_mb, vcpus, root_gb, ephemeral_gb, swap, rxtx_factor
    ("m1.tiny", 512, 1, 1, 0, 0, 1.0),
    ("m1.small", 2048, 1, 20, 0, 0, 1.0),
    ("m1.medium", 4096, 2, 40, 0, 0, 1.0),
    ("m1.large", 8192, 4, 80, 0, 0, 1.0),
    ("m1.xlarge", 16384, 8, 160, 0, 0, 1.0),
    ("c1.medium", 2048, 4, 20, 20, 512, 1.5),
    ("c1.xlarge", 8192, 16, 40, 80, 1024, 2.0),
    ("r1.large", 32768, 4, 80, 0, 0, 1.0),
    ("r1.xlarge", 65536, 8, 160, 0, 2048, 1.0),
    ("g1.large", 16384, 8, 80, 160, 0, 3.0),
]
EXTRA_SPECS = [("hw:cpu_policy", ["shared", "dedicated"]),
               ("quota:disk_read_bytes_sec", ["10240000", "20480000"]),
               ("capabilities:hypervisor_type", ["QEMU", "KVM"])]
VM_STATES = [("active", 80), ("stopped", 8), ("building", 4), ("suspended", 3),
             ("paused", 2), ("error", 2), ("rescued", 1)]
TASK_STATES = [(None, 88), ("spawning", 3), ("rebooting", 3), ("image_snapshot", 2),
               ("resize_prep", 2), ("powering-off", 2)]
POWER = {"active": 1, "stopped": 4, "building": 0, "suspended": 7, "paused": 3,
         "error": 0, "rescued": 1, "deleted": 0}


def host_name(i: int) -> str:
    return f"node-{i:03d}"


def project_name(i: int) -> str:
    return f"project-{i:02d}"


def _weighted(rng: random.Random, pairs: Sequence[tuple[Any, int]]) -> Callable[[], Any]:
    values = [v for v, _ in pairs]
    weights = [w for _, w in pairs]
    return lambda: rng.choices(values, weights)[0]


def progress(text: str) -> None:
    print(f"[bench] {text}", file=sys.stderr, flush=True)


class Seeder:
    """Fills the tables; ``await seed.base(conn)`` once, then ``add_instances`` as needed."""

    def __init__(self, seed: int = 42) -> None:
        self.rng = random.Random(seed)
        self.now = dt.datetime(2012, 11, 1, 12, 0, 0)  # Folsom's day: a fixed clock
        self.next_id: dict[str, int] = {}
        self.groups_by_project: dict[str, list[int]] = {}
        self.live_uuids: list[str] = []
        self.owners: dict[str, tuple[str, str]] = {}  # live uuid: (user_id, project_id)
        self.probe_uuids: list[str] = []
        self.service_ids: list[int] = []
        self.instances = 0
        self._vm_state = _weighted(self.rng, VM_STATES)
        self._task_state = _weighted(self.rng, TASK_STATES)
        self._key_data: dict[str, str] = {}  # user -> public key
        self._nw_template = _network_info_template()

    # -- helpers ---------------------------------------------------------------------

    def _ids(self, table: str, n: int) -> range:
        start = self.next_id.get(table, 1)
        self.next_id[table] = start + n
        return range(start, start + n)

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _ago(self, max_days: float) -> dt.datetime:
        return self.now - dt.timedelta(seconds=self.rng.uniform(0, max_days * 86400))

    async def _copy(self, conn: asyncpg.Connection, table: str,
                    rows: Iterable[dict[str, Any]]) -> int:
        columns = [c.name for c in TABLES[table].columns]
        records = [tuple(r.get(c) for c in columns) for r in rows]
        if records:
            await conn.copy_records_to_table(table, records=records, columns=columns)
        return len(records)

    def _base(self, created: dt.datetime, updated: dt.datetime | None = None,
              deleted: bool = False) -> dict[str, Any]:
        return {"created_at": created, "updated_at": updated,
                "deleted_at": (updated or created) if deleted else None, "deleted": deleted}

    # -- flavors, security groups, services, compute nodes -----------------------------

    async def base(self, conn: asyncpg.Connection) -> None:
        t0 = time.perf_counter()
        created = self.now - dt.timedelta(days=400)
        flavors, specs = [], []
        for fid, (name, mem, vcpus, root, eph, swap, rxtx) in zip(
                self._ids("instance_types", len(FLAVORS)), FLAVORS, strict=True):
            flavors.append({"id": fid, "name": name, "memory_mb": mem, "vcpus": vcpus,
                            "root_gb": root, "ephemeral_gb": eph, "flavorid": str(fid),
                            "swap": swap, "rxtx_factor": rxtx, "vcpu_weight": None,
                            "disabled": False, "is_public": True, **self._base(created)})
            for key, choices in EXTRA_SPECS[: 2 + fid % 2]:
                specs.append({"id": self._ids("instance_type_extra_specs", 1)[0], "key": key,
                              "value": self.rng.choice(choices), "instance_type_id": fid,
                              **self._base(created)})
        await self._copy(conn, "instance_types", flavors)
        await self._copy(conn, "instance_type_extra_specs", specs)

        groups, rules = [], []
        for p in range(PROJECTS):
            project = project_name(p)
            ids = list(self._ids("security_groups", GROUPS_PER_PROJECT))
            self.groups_by_project[project] = ids
            for n, gid in enumerate(ids):
                name = "default" if n == 0 else f"sg-{p:02d}-{n:02d}"
                groups.append({"id": gid, "name": name,
                               "description": f"security group {name} of {project}",
                               "user_id": f"user-{p:02d}-0", "project_id": project,
                               **self._base(self._ago(300))})
                for r in range(RULES_PER_GROUP):
                    rid = self._ids("security_group_rules", 1)[0]
                    if r == 0:
                        rule = ("tcp", 22, 22, "0.0.0.0/0", None)
                    elif r == 1:
                        port = self.rng.choice([80, 443, 8080, 5432])
                        rule = ("tcp", port, port, f"10.{p}.0.0/16", None)
                    else:
                        rule = ("icmp", -1, -1, None, self.rng.choice(ids))
                    rules.append({"id": rid, "parent_group_id": gid, "protocol": rule[0],
                                  "from_port": rule[1], "to_port": rule[2], "cidr": rule[3],
                                  "group_id": rule[4], **self._base(self._ago(300))})
        await self._copy(conn, "security_groups", groups)
        await self._copy(conn, "security_group_rules", rules)

        services, nodes, stats = [], [], []
        for h in range(HOSTS):
            sid = self._ids("services", 1)[0]
            self.service_ids.append(sid)
            host = host_name(h)
            seen = self._ago(0.0001)
            services.append({"id": sid, "host": host, "binary": "nova-compute",
                             "topic": "compute", "report_count": self.rng.randint(1, 500_000),
                             "disabled": h % 50 == 49, "availability_zone": "nova",
                             **self._base(self._ago(400), seen)})
            nid = self._ids("compute_nodes", 1)[0]
            vcpus, mem, disk = 32, 262_144, 2_000
            used_vcpus = self.rng.randint(0, vcpus)
            used_mem = self.rng.randint(0, mem // 2)
            used_disk = self.rng.randint(0, disk // 2)
            nodes.append({"id": nid, "service_id": sid, "vcpus": vcpus, "memory_mb": mem,
                          "local_gb": disk, "vcpus_used": used_vcpus,
                          "memory_mb_used": used_mem, "local_gb_used": used_disk,
                          "hypervisor_type": "QEMU", "hypervisor_version": 1_000_000,
                          "hypervisor_hostname": f"{host}.example.org",
                          "free_ram_mb": mem - used_mem, "free_disk_gb": disk - used_disk,
                          "current_workload": self.rng.randint(0, 4),
                          "running_vms": self.rng.randint(0, 60),
                          "cpu_info": _cpu_info(),
                          "disk_available_least": disk - used_disk - 10,
                          **self._base(self._ago(400), seen)})
            keys = ["num_instances", "num_vm_active", "num_task_None", "io_workload",
                    "num_os_type_linux", f"num_proj_{project_name(h % PROJECTS)}"]
            for key in keys[:STATS_PER_NODE]:
                stats.append({"id": self._ids("compute_node_stats", 1)[0], "key": key,
                              "value": str(self.rng.randint(0, 60)), "compute_node_id": nid,
                              **self._base(self._ago(10), seen)})
        await self._copy(conn, "services", services)
        await self._copy(conn, "compute_nodes", nodes)
        await self._copy(conn, "compute_node_stats", stats)
        progress(f"seeded {len(flavors)} flavors, {len(groups)} security groups "
                 f"({len(rules)} rules), {len(services)} services and compute nodes "
                 f"in {time.perf_counter() - t0:.1f} s")

    # -- instances ----------------------------------------------------------------------

    async def add_instances(self, conn: asyncpg.Connection, count: int, *,
                            probes: int = 0) -> None:
        """Add ``count`` instances (the first ``probes`` of them on the probe host and
        project) with their metadata, system metadata, info caches and group links."""
        t0 = time.perf_counter()
        done = 0
        while done < count:
            n = min(CHUNK, count - done)
            probe_n = max(0, min(n, probes - done))
            tables = self._instance_rows(n, probe_n)
            async with conn.transaction():
                for table, rows in tables.items():
                    await self._copy(conn, table, rows)
            done += n
            self.instances += n
            if count > CHUNK:
                rate = done / (time.perf_counter() - t0)
                progress(f"  instances: {done:,}/{count:,} ({rate:,.0f}/s)")
        progress(f"seeded {count:,} instances in {time.perf_counter() - t0:.1f} s "
                 f"(total {self.instances:,})")

    def _instance_rows(self, n: int, probes: int) -> dict[str, list[dict[str, Any]]]:
        rng = self.rng
        out: dict[str, list[dict[str, Any]]] = {
            "instances": [], "instance_metadata": [], "instance_system_metadata": [],
            "instance_info_caches": [], "security_group_instance_association": []}
        for k, iid in enumerate(self._ids("instances", n)):
            probe = k < probes
            p = rng.randrange(PROJECTS)
            project = PROBE_PROJECT if probe else project_name(p)
            user = f"user-{p:02d}-{rng.randrange(USERS_PER_PROJECT)}"
            h = rng.randrange(HOSTS)
            host = PROBE_HOST if probe else host_name(h)
            flavor_id = rng.randrange(len(FLAVORS)) + 1
            fname, mem, vcpus, root, eph, _swap, _rxtx = FLAVORS[flavor_id - 1]
            created = self._ago(365)
            deleted = not probe and rng.random() < 0.03
            vm_state = "deleted" if deleted else self._vm_state()
            task_state = None if deleted else self._task_state()
            updated = None if rng.random() < 0.1 else created + dt.timedelta(
                seconds=rng.uniform(60, max(61.0, (self.now - created).total_seconds())))
            launched = created + dt.timedelta(seconds=rng.uniform(20, 120))
            inst_uuid = self._uuid()
            image = self._uuid()
            if probe:
                self.probe_uuids.append(inst_uuid)
            elif not deleted:
                self.live_uuids.append(inst_uuid)
                self.owners[inst_uuid] = (user, project)
            name = f"vm-{iid}"
            out["instances"].append({
                "id": iid, "user_id": user, "project_id": project, "image_ref": image,
                "kernel_id": "", "ramdisk_id": "", "server_name": None, "launch_index": 0,
                "key_name": f"key-{user}", "key_data": self._public_key(user),
                "power_state": POWER.get(vm_state, 0), "vm_state": vm_state,
                "task_state": task_state, "memory_mb": mem, "vcpus": vcpus, "root_gb": root,
                "ephemeral_gb": eph, "hostname": name, "host": host,
                "instance_type_id": flavor_id,
                "user_data": _user_data(rng) if rng.random() < 0.3 else None,
                "reservation_id": f"r-{rng.getrandbits(32):08x}",
                "scheduled_at": created + dt.timedelta(seconds=1),
                "launched_at": launched, "terminated_at": updated if deleted else None,
                "availability_zone": "nova", "display_name": name,
                "display_description": name, "launched_on": host, "locked": False,
                "os_type": "linux", "architecture": "x86_64", "vm_mode": None,
                "uuid": inst_uuid, "root_device_name": "/dev/vda",
                "default_ephemeral_device": "/dev/vdb" if eph else None,
                "default_swap_device": None, "config_drive": "",
                "access_ip_v4": f"172.16.{iid // 250 % 250}.{iid % 250 + 1}",
                "access_ip_v6": None, "auto_disk_config": False,
                "progress": 100 if vm_state == "active" else 0,
                "shutdown_terminate": False, "disable_terminate": False,
                **self._base(created, updated, deleted)})
            for key, value in (("role", rng.choice(["web", "db", "cache", "worker"])),
                               ("owner", user),
                               ("env", rng.choice(["prod", "staging", "dev"]))):
                out["instance_metadata"].append({
                    "id": self._ids("instance_metadata", 1)[0], "key": key, "value": value,
                    "instance_uuid": inst_uuid, **self._base(created)})
            for key, value in (("image_base_image_ref", image),
                               ("instance_type_name", fname),
                               ("image_min_disk", str(root))):
                out["instance_system_metadata"].append({
                    "id": self._ids("instance_system_metadata", 1)[0], "key": key,
                    "value": value, "instance_uuid": inst_uuid, **self._base(created)})
            out["instance_info_caches"].append({
                "id": self._ids("instance_info_caches", 1)[0],
                "network_info": self._network_info(iid, project),
                "instance_uuid": inst_uuid, **self._base(created, updated)})
            groups = self.groups_by_project[project_name(p)]
            chosen = [groups[0]] + ([rng.choice(groups[1:])] if rng.random() < 0.5 else [])
            for gid in chosen:
                out["security_group_instance_association"].append({
                    "id": self._ids("security_group_instance_association", 1)[0],
                    "security_group_id": gid, "instance_uuid": inst_uuid,
                    **self._base(created)})
        return out

    def _public_key(self, user: str) -> str:
        key = self._key_data.get(user)
        if key is None:
            body = "".join(self.rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                           "0123456789+/") for _ in range(372))
            key = self._key_data[user] = f"ssh-rsa AAAAB3NzaC1yc2E{body} {user}@workstation"
        return key

    def _network_info(self, iid: int, project: str) -> str:
        mac = f"fa:16:3e:{iid >> 16 & 255:02x}:{iid >> 8 & 255:02x}:{iid & 255:02x}"
        return (self._nw_template
                .replace("@VIF@", str(uuid.UUID(int=iid, version=4)))
                .replace("@MAC@", mac)
                .replace("@IP@", f"10.{iid >> 16 & 255}.{iid >> 8 & 255}.{iid & 255}")
                .replace("@FIP@", f"192.0.{iid >> 8 & 255}.{iid & 255}")
                .replace("@IP6@", f"fd00::{iid:x}")
                .replace("@PROJECT@", project))

    async def finish(self, conn: asyncpg.Connection) -> None:
        """Move the id sequences past the seeded rows and refresh planner statistics."""
        for table, next_id in self.next_id.items():
            if next_id <= 1:
                continue
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {next_id - 1})")
        t0 = time.perf_counter()
        await conn.execute("ANALYZE")
        progress(f"ANALYZE in {time.perf_counter() - t0:.1f} s")


def _network_info_template() -> str:
    """One VIF with an IPv4 (plus floating IP) and an IPv6 subnet: ~1.3 KB, as in Folsom."""
    def ip(addr: str, kind: str, version: int, floating: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"address": addr, "type": kind, "version": version, "meta": {}}
        if floating:
            out["floating_ips"] = [ip("@FIP@", "floating", 4)]
        return out

    vif = {
        "id": "@VIF@", "address": "@MAC@",
        "network": {
            "id": "0f6c1e0a-8d2b-4c55-9a61-3c1f3a6f7f10", "bridge": "br100",
            "label": "private", "injected": False,
            "subnets": [
                {"cidr": "10.0.0.0/8", "version": 4, "gateway": ip("10.0.0.1", "gateway", 4),
                 "dns": [ip("8.8.8.8", "dns", 4), ip("8.8.4.4", "dns", 4)],
                 "ips": [ip("@IP@", "fixed", 4, floating=True)], "routes": [],
                 "meta": {"dhcp_server": "10.0.0.1"}},
                {"cidr": "fd00::/64", "version": 6, "gateway": ip("fd00::1", "gateway", 6),
                 "dns": [], "ips": [ip("@IP6@", "fixed", 6)], "routes": [], "meta": {}},
            ],
            "meta": {"tenant_id": "@PROJECT@", "multi_host": True,
                     "should_create_bridge": True, "bridge_interface": "eth1",
                     "vlan": 100},
        },
        "meta": {"rxtx_cap": 0}, "ovs_interfaceid": None,
    }
    return json.dumps([vif])


def _cpu_info() -> str:
    return json.dumps({"vendor": "Intel", "model": "SandyBridge", "arch": "x86_64",
                       "features": ["ssse3", "sse4.1", "sse4.2", "avx", "aes", "x2apic",
                                    "popcnt", "pclmuldq", "tsc-deadline", "vmx"],
                       "topology": {"cores": 8, "threads": 2, "sockets": 2}})


def _user_data(rng: random.Random) -> str:
    return base64.b64encode(rng.randbytes(180)).decode()
