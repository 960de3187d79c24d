"""The conductor benchmark (issue 5): seed PostgreSQL, start a conductor and the floor as
separate processes, and measure them through the public client.

    .venv/bin/python -m bench.run                      # the default measurements
    .venv/bin/python -m bench.run --scaling --soak 100000 --growth --json out.jsonl

Every figure of the conductor is also given as a ratio to the floor's (``bench.floor``: the
same reply from a hand-written aio-pika + asyncpg server, one SQL round trip per call),
measured in the same run with the same client and concurrency.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import os
import random
import secrets
import shlex
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg
from sqlalchemy.engine import URL, make_url

from bench import load, procs, profile, report
from bench.load import Call, Result
from bench.procs import BenchError, Server
from bench.seed import PROBE_HOST, PROBE_INSTANCES, PROBE_PROJECT, Seeder, progress
from client import ConductorClient
from schemas import exceptions
from schemas.context import RequestContext, get_admin_context

DEFAULT_DB_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/conductor_bench"
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
FUNCTIONS = ("service_get", "instance_get_by_uuid", "instance_update",
             "instance_get_all_by_filters")
USER_FUNCTIONS = ("instance_get_by_uuid", "instance_update", "instance_get_all_by_filters")
FLOOR_FUNCTIONS = ("service_get", "instance_get_by_uuid", "instance_get_by_uuid (user)",
                   "instance_update", "instance_update (user)",
                   "instance_get_all_by_filters", "instance_get_all_by_filters (user)")
CALL_TIMEOUT = 30.0
READY_TIMEOUT = 60.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db-url", default=DEFAULT_DB_URL,
                   help="PostgreSQL database to DROP and recreate (its name must contain "
                        "'bench'; default %(default)s)")
    p.add_argument("--amqp-url", default=DEFAULT_AMQP_URL, help="broker (default %(default)s)")
    p.add_argument("--instances", type=int, default=10_000, help="instances to seed")
    p.add_argument("--concurrency", default="1,64", help="comma-separated (default %(default)s)")
    p.add_argument("--duration", type=float, default=5.0, help="seconds per measurement")
    p.add_argument("--warmup", type=float, default=1.0, help="seconds before each measurement")
    p.add_argument("--functions", default=",".join(FUNCTIONS),
                   help="conductor functions to measure (default: all four)")
    p.add_argument("--rounds", type=int, default=3,
                   help="interleaved rounds (conductor, floor, conductor, floor ...); the "
                        "table gives the median and min-max of each figure (default 3)")
    p.add_argument("--contexts", default="admin,user",
                   help="whose calls: an admin's, a user's in the instance's own project "
                        "(strict isolation's ownership check), or both (default %(default)s)")
    p.add_argument("--workers", type=int, default=1, help="conductor serve --workers")
    p.add_argument("--json", metavar="FILE", help="also write the JSON lines to FILE")
    p.add_argument("--seed", type=int, default=42, help="random seed of data and calls")
    p.add_argument("--no-main", action="store_true",
                   help="skip the default measurements (run only the modes asked for)")
    p.add_argument("--no-floor", action="store_true", help="do not measure the floor")
    p.add_argument("--scaling", action="store_true",
                   help="service_get with --workers 1 and 2 at --scaling-concurrency")
    p.add_argument("--scaling-concurrency", type=int, default=128)
    p.add_argument("--soak", type=int, default=0, metavar="CALLS",
                   help="make CALLS calls (mix of the four); RSS at half and at the end")
    p.add_argument("--soak-concurrency", type=int, default=64)
    p.add_argument("--soak-timeout", type=float, default=1800.0, help="seconds at most")
    p.add_argument("--growth", action="store_true",
                   help="latency of indexed lookups at each of --growth-sizes instances")
    p.add_argument("--growth-sizes", default="1000,100000")
    p.add_argument("--growth-concurrency", type=int, default=1)
    p.add_argument("--server-arg", action="append", default=[], metavar="ARG",
                   help="extra argument for `conductor serve` (repeatable), e.g. "
                        "--server-arg=--pool-size=20")
    p.add_argument("--server-wrapper", default="", metavar="CMD",
                   help="prefix of the conductor's command line, e.g. "
                        "'py-spy record -o profile.svg --' (profiling)")
    p.add_argument("--source", default=str(procs.ROOT), metavar="DIR",
                   help="source tree the conductor runs from (and migrates with), e.g. a "
                        "`git worktree` of another commit (default: this one)")
    p.add_argument("--profile", metavar="DIR",
                   help="attach py-spy to the conductor during each measurement; collapsed "
                        "stacks and a summary per measurement in DIR (pip install py-spy)")
    p.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                   help="before each measurement wait up to SECONDS for the host to be idle "
                        "(< 15%% busy), for shared machines")
    p.add_argument("--allow-remote", action="store_true",
                   help="allow servers other than loopback addresses")
    args = p.parse_args(argv)
    args.concurrency_levels = _ints(args.concurrency, "--concurrency")
    if args.rounds < 1:
        p.error("--rounds: at least 1")
    args.growth_size_list = _ints(args.growth_sizes, "--growth-sizes")
    args.function_list = [f.strip() for f in args.functions.split(",") if f.strip()]
    unknown = sorted(set(args.function_list) - set(FUNCTIONS))
    if unknown:
        p.error(f"--functions: unknown {unknown}; choose from {', '.join(FUNCTIONS)}")
    contexts = {c.strip() for c in args.contexts.split(",") if c.strip()}
    if not contexts or contexts - {"admin", "user"}:
        p.error("--contexts: admin, user or admin,user")
    args.function_list = [
        *(f for f in args.function_list if "admin" in contexts),
        *(f"{f} (user)" for f in args.function_list if "user" in contexts
          and f in USER_FUNCTIONS)]
    return args


def _ints(text: str, option: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise SystemExit(f"{option}: comma-separated integers, not {text!r}") from None
    if not values or min(values) < 1:
        raise SystemExit(f"{option}: positive integers, not {text!r}")
    return values


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.url = make_url(args.db_url).set(drivername="postgresql+asyncpg")
        self.dsn = _asyncpg_dsn(self.url)
        self.logs = procs.log_dir()
        self.seeder = Seeder(args.seed)
        self.rng = random.Random(args.seed + 1)
        self.admin = get_admin_context()
        self.results: list[Result] = []
        self.notes: list[str] = []
        self.queues: set[str] = set()
        self.amqp: aio_pika.abc.AbstractConnection | None = None
        self.channel: aio_pika.abc.AbstractChannel | None = None
        self.run_id = secrets.token_hex(4)
        self.cpus = os.cpu_count() or 1
        self.contexts: dict[tuple[str, str], RequestContext] = {}

    # -- servers and services ----------------------------------------------------------

    async def preflight(self) -> None:
        for host in (self.url.host or "localhost", _amqp_host(self.args.amqp_url)):
            if not self.args.allow_remote and not _is_loopback(host):
                raise BenchError(f"{host} is not a loopback address: the benchmark sends "
                                 "its traffic to 127.0.0.1 only (--allow-remote to override)")
        try:
            conn = await asyncpg.connect(_asyncpg_dsn(self.url.set(database="postgres")),
                                         timeout=5)
            await conn.close()
        except Exception as exc:
            raise BenchError(f"PostgreSQL at {self.url.host}:{self.url.port or 5432} is not "
                             f"reachable ({type(exc).__name__}: {exc}); start it or pass "
                             "--db-url") from None
        try:
            self.amqp = await aio_pika.connect(self.args.amqp_url, timeout=5)
        except Exception as exc:
            raise BenchError(f"RabbitMQ at {_amqp_host(self.args.amqp_url)} is not reachable "
                             f"({type(exc).__name__}: {exc}); start it or pass "
                             "--amqp-url") from None
        self.channel = await self.amqp.channel()
        if self.args.profile:
            try:
                profile.find_py_spy()
            except FileNotFoundError as exc:
                raise BenchError(f"--profile: {exc}") from None
            Path(self.args.profile).mkdir(parents=True, exist_ok=True)
        background = await _host_busy(1.0)
        if background > 15:
            self.note(f"WARNING: the host was {background:.0f}% busy before the benchmark "
                      "started (other processes): the figures will be noisy")

    async def recreate_database(self) -> None:
        name = self.url.database or ""
        if "bench" not in name:
            raise BenchError(f"refusing to drop database {name!r}: the benchmark drops and "
                             "recreates its database, whose name must contain 'bench'")
        conn = await asyncpg.connect(_asyncpg_dsn(self.url.set(database="postgres")))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        t0 = time.perf_counter()
        migrate = await asyncio.create_subprocess_exec(
            procs.python(), "-c", "import sys; from conductor.db import migrate; "
            "migrate.upgrade(sys.argv[1])", self.url.render_as_string(hide_password=False),
            cwd=self.args.source, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT)
        output, _ = await migrate.communicate()
        if migrate.returncode:
            raise BenchError(f"the migrations failed in {self.args.source}:\n"
                             f"{output.decode(errors='replace')[-3000:]}")
        progress(f"database {name} recreated and migrated in {time.perf_counter() - t0:.1f} s")
        self.seeder = Seeder(self.args.seed)

    async def seed(self, instances: int, probes: int = 0) -> None:
        conn = await asyncpg.connect(self.dsn)
        try:
            if not self.seeder.service_ids:
                await self.seeder.base(conn)
            await self.seeder.add_instances(conn, instances, probes=probes)
            await self.seeder.finish(conn)
        finally:
            await conn.close()

    async def start(self, kind: str, *, workers: int = 1) -> tuple[Server, str]:
        """Start a conductor (``kind='conductor'``) or the floor on a fresh topic; return
        once its processes consume."""
        assert self.channel is not None
        topic = f"bench-{self.run_id}-{kind}-{len(self.queues)}"
        # Each server declares its own topic queue (a quorum queue by default; a --source
        # conductor may declare another type), so the bench only waits for its consumers.
        self.queues.add(topic)
        common = ["--db-url", self.url.render_as_string(hide_password=False),
                  "--amqp-url", self.args.amqp_url, "--topic", topic, "--log-level", "WARNING"]
        if kind == "floor":
            argv = [procs.python(), "-m", "bench.floor", *common]
        else:
            argv = [*shlex.split(self.args.server_wrapper), procs.python(), "-m",
                    "conductor.cli", "serve", *common]
            if workers > 1:
                argv += ["--workers", str(workers)]
            argv += self.args.server_arg
        cwd = procs.ROOT if kind == "floor" else Path(self.args.source)
        server = Server(f"{kind}-{len(self.queues)}", argv, self.logs, cwd=cwd)
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if await self.consumers(topic) >= workers:
                break
            if not server.alive():
                raise BenchError(f"the {kind} exited with code {server.popen.returncode} "
                                 f"before consuming; its log ({server.log_path}):\n"
                                 f"{server.log_tail()}")
            if time.monotonic() > deadline:
                raise BenchError(f"the {kind} did not consume {topic!r} within "
                                 f"{READY_TIMEOUT:.0f} s; its log ({server.log_path}):\n"
                                 f"{server.log_tail()}")
            await asyncio.sleep(0.2)
        progress(f"{kind} ready: pid {server.pid}, {workers} worker(s), topic {topic}")
        return server, topic

    async def consumers(self, topic: str) -> int:
        """Consumers of ``topic``, 0 while it does not exist (a passive declare of a missing
        queue closes its channel, hence a channel per look)."""
        assert self.amqp is not None
        try:
            channel = await self.amqp.channel()
            try:
                queue = await channel.declare_queue(topic, passive=True)
                return int(queue.declaration_result.consumer_count or 0)
            finally:
                if not channel.is_closed:
                    await channel.close()
        except aio_pika.exceptions.ChannelClosed:
            return 0

    async def wait_quiet(self) -> None:
        limit = self.args.wait_quiet
        deadline = time.monotonic() + limit
        while limit > 0:
            busy = await _host_busy(0.5)
            if busy < 15:
                return
            if time.monotonic() > deadline:
                self.note(f"host still {busy:.0f}% busy after waiting {limit:.0f} s; "
                          "measuring anyway")
                return

    def check_alive(self, server: Server, kind: str) -> None:
        if not server.alive():
            raise BenchError(f"the {kind} died (exit code {server.popen.returncode}); its log "
                             f"({server.log_path}):\n{server.log_tail()}")

    async def cleanup(self) -> None:
        procs.stop_all()
        if self.amqp is not None:
            # the conductor also declares <topic>.dead and the exchange <topic>.dlx
            for name in sorted(self.queues | {f"{q}.dead" for q in self.queues}):
                await self._delete(name, "queue")
            for name in sorted(f"{q}.dlx" for q in self.queues):
                await self._delete(name, "exchange")
        if self.amqp is not None:
            try:
                await asyncio.wait_for(self.amqp.close(), 5)
            except Exception:
                pass

    async def _delete(self, name: str, kind: str) -> None:
        assert self.amqp is not None
        try:
            channel = await asyncio.wait_for(self.amqp.channel(), 5)
            if kind == "queue":
                await asyncio.wait_for(channel.queue_delete(name), 5)
            else:
                await asyncio.wait_for(channel.exchange_delete(name), 5)
            await channel.close()
        except Exception as exc:
            print(f"[bench] could not delete {kind} {name}: {exc}", file=sys.stderr)

    # -- calls ---------------------------------------------------------------------------

    def user_context(self, uuid: str) -> RequestContext:
        """The context of the user owning ``uuid``: strict isolation checks ownership."""
        owner = self.seeder.owners[uuid]
        if owner not in self.contexts:
            self.contexts[owner] = RequestContext(*owner, is_admin=False, roles=["member"])
        return self.contexts[owner]

    def calls(self, db: ConductorClient) -> dict[str, Call]:
        rng, admin, seeder = self.rng, self.admin, self.seeder
        uuids, services = seeder.live_uuids, seeder.service_ids
        projects = sorted({f"project-{i:02d}" for i in range(10)})
        user = self.user_context

        def own_list() -> Any:
            ctx = user(rng.choice(uuids))
            return db.instance_get_all_by_filters(ctx, {"project_id": ctx.project_id},
                                                  limit=100)

        def own_update() -> Any:
            uuid = rng.choice(uuids)
            return db.instance_update(user(uuid), uuid, {"progress": rng.randrange(101)})

        def own_get() -> Any:
            uuid = rng.choice(uuids)
            return db.instance_get_by_uuid(user(uuid), uuid)

        return {
            # a user's calls (service_get is an admin's only): the ownership check's cost
            "instance_get_by_uuid (user)": own_get,
            "instance_update (user)": own_update,
            "instance_get_all_by_filters (user)": own_list,
            "service_get": lambda: db.service_get(admin, rng.choice(services)),
            "instance_get_by_uuid": lambda: db.instance_get_by_uuid(admin, rng.choice(uuids)),
            "instance_update": lambda: db.instance_update(
                admin, rng.choice(uuids), {"progress": rng.randrange(101)}),
            "instance_get_all_by_filters": lambda: db.instance_get_all_by_filters(
                admin, {"project_id": rng.choice(projects)}, limit=100),
        }

    async def probe(self, calls: dict[str, Call], names: list[str] | tuple[str, ...]
                    ) -> dict[str, str]:
        status = {}
        for name in names:
            try:
                await calls[name]()
                status[name] = "ok"
            except exceptions.NotImplementedInConductor:
                status[name] = "not implemented"
            except Exception as exc:
                status[name] = f"error: {type(exc).__name__}: {exc}"[:120]
        return status

    async def measure(self, mode: str, target: str, name: str, call: Call, status: str,
                      concurrency: int, server: Server, label: str = "",
                      **extra: Any) -> Result:
        result = Result(mode, target, name, concurrency, status=status, label=label,
                        extra={"instances": self.seeder.instances, "cpus": self.cpus,
                               "loadavg_1m": round(os.getloadavg()[0], 2), **extra})
        if status == "ok":
            await self.wait_quiet()
            recorders: list[profile.Recorder] = []

            def on_start() -> None:
                if self.args.profile:
                    out = Path(self.args.profile) / (
                        f"{mode}-{target}-{name}-c{concurrency}"
                        f"{'-' + _slug(label) if label else ''}.txt")
                    recorders.append(profile.Recorder(server.workers()[0],
                                                      self.args.duration, out))

            await load.timed(result, call, concurrency=concurrency,
                             duration=self.args.duration, warmup=self.args.warmup,
                             server=server, on_start=on_start)
            self.check_alive(server, target)
            for rec in recorders:
                summary = await asyncio.to_thread(rec.finish)
                result.extra["profile"] = str(rec.out)
                progress(f"profile of {name} c={concurrency} ({rec.out}):\n{summary}")
            progress(f"{mode} {target} {name} {label} c={concurrency}: "
                     f"{result.calls_per_s:,.0f} calls/s, p50 {result.p50_ms:.2f} ms, "
                     f"p99 {result.p99_ms:.2f} ms" +
                     (f", {result.errors} errors ({result.first_error})"
                      if result.errors else ""))
        self.results.append(result)
        return result

    # -- modes ---------------------------------------------------------------------------

    async def main_mode(self) -> None:
        args = self.args
        conductor, topic = await self.start("conductor", workers=args.workers)
        floor, floor_topic = (None, None) if args.no_floor else await self.start("floor")
        async with ConductorClient(args.amqp_url, topic=topic, timeout=CALL_TIMEOUT) as db:
            calls = self.calls(db)
            status = await self.probe(calls, args.function_list)
            for name, why in status.items():
                if why != "ok":
                    progress(f"conductor {name}: {why}")
            floor_calls: dict[str, Call] = {}
            floor_status: dict[str, str] = {}
            async with contextlib.AsyncExitStack() as stack:
                if floor is not None:
                    assert floor_topic is not None
                    fl = await stack.enter_async_context(ConductorClient(
                        args.amqp_url, topic=floor_topic, timeout=CALL_TIMEOUT))
                    floor_calls = self.calls(fl)
                    floor_status = await self.probe(floor_calls, FLOOR_FUNCTIONS)
                    await self.check_equal(db, fl, status, floor_status)
                for round_no in range(1, args.rounds + 1):
                    # A, B, A, B: each figure of the conductor is measured next to the
                    # floor's, so a neighbour's burst on a shared host hits both alike.
                    label = f"round {round_no}"
                    self.note(f"{label}: load average at start {_loadavg()}")
                    for c in args.concurrency_levels:
                        for name in args.function_list:
                            await self.measure("main", "conductor", name, calls[name],
                                               status[name], c, conductor, label=label)
                            if floor is not None and name in floor_status:
                                await self.measure("main", "floor", name, floor_calls[name],
                                                   floor_status[name], c, floor, label=label)
                    self.note(f"{label}: load average at end {_loadavg()}")
        conductor.stop()
        if floor is not None:
            floor.stop()
        medians = report.medians([r for r in self.results if r.mode == "main"])
        self.results += medians
        self.ratios(medians)

    async def check_equal(self, db: ConductorClient, fl: ConductorClient,
                          status: dict[str, str], floor_status: dict[str, str]) -> None:
        samples: list[tuple[str, Any]] = [
            ("service_get", sid) for sid in self.seeder.service_ids[:3]]
        samples += [("instance_get_by_uuid", u)
                    for u in self.rng.sample(self.seeder.live_uuids, 5)]
        samples += [("instance_get_by_uuid", "00000000-0000-4000-8000-000000000000")]
        samples += [("instance_get_by_uuid (user)", u)
                    for u in self.rng.sample(self.seeder.live_uuids, 3)]
        samples += [(f"instance_update{who}", u) for who in ("", " (user)")
                    for u in self.rng.sample(self.seeder.live_uuids, 2)]
        samples += [(f"instance_get_all_by_filters{who}", u) for who in ("", " (user)")
                    for u in self.rng.sample(self.seeder.live_uuids, 2)]
        skipped: set[str] = set()
        for name, arg in samples:
            if status.get(name, "ok") != "ok" or floor_status.get(name) != "ok":
                if name not in skipped:
                    why = f"conductor: {status[name]}" if status.get(name, "ok") != "ok" \
                        else f"floor: {floor_status.get(name)}"
                    self.note(f"equality check {name}: skipped ({why})")
                    skipped.add(name)
                continue
            method = name.removesuffix(" (user)")
            context = self.admin if method == name else self.user_context(arg)
            replies = []
            for client in (db, fl):
                try:
                    if method == "instance_update":  # the same update, both sides
                        row = await client.call(method, context, arg, {"progress": 42})
                        # the new updated_at is each side's own clock: not compared
                        row.pop("updated_at", None)
                        replies.append(("result", row))
                    elif method == "instance_get_all_by_filters":  # arg: one of its rows
                        project = self.seeder.owners[arg][1]
                        replies.append(("result", await client.call(
                            method, context, {"project_id": project}, limit=100)))
                    else:
                        replies.append(("result", await client.call(method, context, arg)))
                except exceptions.NovaException as exc:
                    replies.append(("error", f"{type(exc).__name__}: {exc}"))
            (kind_a, a), (kind_b, b) = replies
            if (kind_a, a) == (kind_b, b):
                differences = report.diff(a, b)
                if differences:
                    self.note(f"equality check {name}({arg!r}): EQUAL by ==, but value types "
                              "differ:\n    " + "\n    ".join(differences))
                else:
                    self.note(f"equality check {name}({arg!r}): EQUAL"
                              + (f" (both raise {a})" if kind_a == "error" else ""))
                continue
            if kind_a != kind_b or kind_a == "error":
                lines = [f"conductor {kind_a}: {str(a)[:120]}", f"floor {kind_b}: {str(b)[:120]}"]
            else:
                lines = report.diff(a, b)
            self.note(f"WARNING: equality check {name}({arg!r}): the floor's reply differs "
                      "from the conductor's; the floor ratios compare different work:\n    "
                      + "\n    ".join(lines))

    def ratios(self, results: list[Result]) -> None:
        floors = {(r.function, r.concurrency): r for r in results
                  if r.target == "floor" and r.status == "ok"}
        for r in results:
            f = floors.get((r.function, r.concurrency))
            if r.target != "conductor" or r.status != "ok" or f is None:
                continue
            r.ratio_calls_per_s = r.calls_per_s / f.calls_per_s if f.calls_per_s else None
            r.ratio_p50 = r.p50_ms / f.p50_ms if f.p50_ms else None
            r.ratio_cpu_per_call = r.server_cpu_ms_per_call / f.server_cpu_ms_per_call \
                if f.server_cpu_ms_per_call else None
        if not floors:
            return
        # issue 11's targets, at the median of interleaved rounds
        levels = self.args.concurrency_levels
        top = max(levels)
        goals: list[tuple[str, int, str, float]] = []
        for name in ("service_get", "instance_get_by_uuid"):
            goals += [(name, top, "calls/s", 0.9), (name, top, "cpu", 1.3)]
            if 1 in levels:
                goals += [(name, 1, "p50", 1.3), (name, 1, "cpu", 1.6)]
        goals += [("instance_update", c, "calls/s", 0.7) for c in sorted({1, top} & set(levels))]
        goals += [("instance_get_all_by_filters", top, "calls/s", 0.7)]
        for name, c, what, goal in goals:
            r = next((r for r in results if r.target == "conductor" and r.function == name
                      and r.concurrency == c and r.status == "ok"), None)
            if r is None:
                continue
            value = {"calls/s": r.ratio_calls_per_s, "p50": r.ratio_p50,
                     "cpu": r.ratio_cpu_per_call}[what]
            if value is None:
                self.note(f"target {name} {what} at c={c}: no floor to compare with")
                continue
            ok = value >= goal if what == "calls/s" else value <= goal
            sign = ">=" if what == "calls/s" else "<="
            self.note(f"target {name} {what} at c={c}: {value:.2f}x the floor "
                      f"(goal {sign} {goal}x): {'met' if ok else 'NOT met'}")

    async def scaling_mode(self) -> None:
        args = self.args
        found: dict[int, Result] = {}
        for workers in (1, 2):
            server, topic = await self.start("conductor", workers=workers)
            async with ConductorClient(args.amqp_url, topic=topic, timeout=CALL_TIMEOUT) as db:
                calls = self.calls(db)
                status = await self.probe(calls, ["service_get"])
                found[workers] = await self.measure(
                    "scaling", "conductor", "service_get", calls["service_get"],
                    status["service_get"], args.scaling_concurrency, server,
                    label=f"--workers {workers}")
            server.stop()
        one, two = found[1], found[2]
        if one.status == two.status == "ok" and one.calls_per_s:
            ratio = two.calls_per_s / one.calls_per_s
            two.extra["ratio_to_one_worker"] = ratio
            self.note(f"target --workers 2 vs 1 (service_get, c={args.scaling_concurrency}): "
                      f"{ratio:.2f}x (goal >= 1.5x where the cores allow; this machine has "
                      f"{self.cpus} CPUs shared by client, conductor, RabbitMQ and "
                      f"PostgreSQL; host CPU {two.machine_cpu_pct:.0f}% busy with 2 workers)")

    async def soak_mode(self) -> None:
        args = self.args
        total = args.soak
        server, topic = await self.start("conductor", workers=args.workers)
        async with ConductorClient(args.amqp_url, topic=topic, timeout=CALL_TIMEOUT) as db:
            calls = self.calls(db)
            status = await self.probe(calls, FUNCTIONS)
            mix = [calls[n] for n in FUNCTIONS if status[n] == "ok"]
            names = [n for n in FUNCTIONS if status[n] == "ok"]
            if not mix:
                self.note("soak: nothing implemented to call")
                server.stop()
                return
            label_fn = f"mix of {len(names)}"
            checkpoints = sorted({total // 2, total})
            start_mem = procs.memory(server)
            segment: list[float] = []
            state = {"done": 0, "errors": 0, "snap": load.snapshot(server), "from": 1}

            def on_done(latency: float, ok: bool) -> None:
                state["done"] += 1
                if ok:
                    segment.append(latency)
                else:
                    state["errors"] += 1
                done = state["done"]
                if done % max(1, total // 10) == 0:
                    mem = procs.memory(server)
                    progress(f"soak: {done:,}/{total:,} calls, conductor RSS "
                             f"{mem.rss_mb:.1f} MB (peak {mem.peak_mb:.1f} MB)")
                if done in checkpoints:
                    snap = load.snapshot(server)
                    window = snap.wall - state["snap"].wall
                    r = Result("soak", "conductor", label_fn, args.soak_concurrency,
                               label=f"calls {state['from']:,}-{done:,}",
                               extra={"instances": self.seeder.instances, "cpus": self.cpus,
                                      "after_calls": done, "errors_so_far": state["errors"],
                                      "mix": names})
                    load.fill(r, segment, window, state["snap"], snap, server)
                    r.errors = state["errors"]
                    self.results.append(r)
                    segment.clear()
                    state["snap"], state["from"] = snap, done + 1

            def pick() -> Call:
                return mix[self.rng.randrange(len(mix))]

            made = await load.counted(pick, total=total, concurrency=args.soak_concurrency,
                                      timeout=args.soak_timeout, on_done=on_done)
        self.check_alive(server, "conductor")
        server.stop()
        soak = [r for r in self.results if r.mode == "soak"]
        self.note(f"soak: conductor RSS {start_mem.rss_mb:.1f} MB at start; " + "; ".join(
            f"{r.rss_mb:.1f} MB after {r.extra['after_calls']:,} calls" for r in soak))
        if made < total:
            self.note(f"soak: stopped at {made:,} calls after --soak-timeout "
                      f"{args.soak_timeout:.0f} s")
        if len(soak) == 2:
            a, b = soak
            growth = (b.rss_mb - a.rss_mb) / a.rss_mb if a.rss_mb else 0.0
            b.extra["rss_growth_from_half"] = growth
            self.note(f"target RSS after {b.extra['after_calls']:,} calls: {b.rss_mb:.1f} MB "
                      f"(goal < 150 MB: {'met' if b.rss_mb < 150 else 'NOT met'}); growth "
                      f"from call {a.extra['after_calls']:,}: {100 * growth:+.1f}% (goal <= "
                      f"10%: {'met' if growth <= 0.10 else 'NOT met'})")

    async def growth_mode(self) -> None:
        args = self.args
        sizes = sorted(args.growth_size_list)
        await self.recreate_database()
        found: dict[tuple[str, str], list[Result]] = {}
        for size in sizes:
            if self.seeder.instances == 0:
                await self.seed(size, probes=PROBE_INSTANCES)
            elif size > self.seeder.instances:
                await self.seed(size - self.seeder.instances)
            server, topic = await self.start("conductor", workers=args.workers)
            async with ConductorClient(args.amqp_url, topic=topic, timeout=CALL_TIMEOUT) as db:
                for name, label, call in self.growth_calls(db):
                    status = (await self.probe({name: call}, [name]))[name]
                    r = await self.measure("growth", "conductor", name, call, status,
                                           args.growth_concurrency, server, label=label)
                    found.setdefault((name, label), []).append(r)
            server.stop()
        for (name, label), rs in found.items():
            first, last = rs[0], rs[-1]
            if len(rs) < 2 or first.status != "ok" or last.status != "ok" or not first.p50_ms:
                continue
            ratio = last.p50_ms / first.p50_ms
            last.extra["growth_ratio_p50"] = ratio
            self.note(f"target growth {name} {label}: p50 {first.p50_ms:.2f} ms at "
                      f"{first.extra['instances']:,} -> {last.p50_ms:.2f} ms at "
                      f"{last.extra['instances']:,} instances = {ratio:.2f}x (goal <= 1.5x: "
                      f"{'met' if ratio <= 1.5 else 'NOT met'})")

    def growth_calls(self, db: ConductorClient) -> list[tuple[str, str, Call]]:
        rng, admin, uuids = self.rng, self.admin, self.seeder.live_uuids
        get_all = db.instance_get_all_by_filters
        return [
            ("instance_get_by_uuid", "random uuid",
             lambda: db.instance_get_by_uuid(admin, rng.choice(uuids))),
            ("instance_get_all_by_filters", f"host ({PROBE_INSTANCES} rows)",
             lambda: get_all(admin, {"host": PROBE_HOST})),
            ("instance_get_all_by_filters", f"project_id ({PROBE_INSTANCES} rows)",
             lambda: get_all(admin, {"project_id": PROBE_PROJECT})),
            ("instance_get_all_by_filters", "uuid (1 row)",
             lambda: get_all(admin, {"uuid": rng.choice(uuids)})),
        ]

    def note(self, text: str) -> None:
        self.notes.append(text)
        progress(text)

    # -- output ----------------------------------------------------------------------------

    def print_report(self) -> None:
        args = self.args
        out = sys.stdout
        print(f"\nconductor benchmark: {self.seeder.instances:,} instances (last seeded), "
              f"{self.cpus} CPUs, {args.duration:g} s per measurement after "
              f"{args.warmup:g} s warm-up; cpu columns: 100% = one core, host = all cores",
              file=out)
        for mode in ("main", "median", "scaling", "soak", "growth"):
            rows = [r for r in self.results if r.mode == mode]
            if rows:
                print(f"\n[{mode}]", file=out)
                print(report.median_table(rows) if mode == "median" else report.table(rows),
                      file=out)
        if self.notes:
            print("\nnotes:", file=out)
            for n in self.notes:
                print(f"  {n}", file=out)
        print("\nJSON lines:", file=out)
        report.json_lines(self.results, out)
        if args.json:
            with open(args.json, "w") as f:
                report.json_lines(self.results, f)
            print(f"(also written to {args.json})", file=out)
        out.flush()


async def amain(args: argparse.Namespace) -> int:
    bench = Bench(args)
    task = asyncio.current_task()
    assert task is not None
    # SIGTERM (a timeout, a CI runner) cleans up as Ctrl-C does.
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        await bench.preflight()
        if not args.no_main or args.scaling or args.soak:
            await bench.recreate_database()
            await bench.seed(args.instances)
        if not args.no_main:
            await bench.main_mode()
        if args.scaling:
            await bench.scaling_mode()
        if args.soak:
            await bench.soak_mode()
        if args.growth:
            await bench.growth_mode()
    finally:
        await bench.cleanup()
        if bench.results or bench.notes:
            bench.print_report()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        import uvloop
    except ImportError:
        runner: Callable[[Any], int] = asyncio.run
    else:
        runner = uvloop.run
    try:
        return runner(amain(args))
    except (KeyboardInterrupt, asyncio.CancelledError):
        procs.stop_all()
        print("bench: interrupted; servers stopped and queues deleted", file=sys.stderr)
        return 130
    except BenchError as exc:
        procs.stop_all()
        print(f"bench: {exc}", file=sys.stderr)
        return 2


async def _host_busy(seconds: float) -> float:
    busy0, total0 = procs.machine_ticks()
    await asyncio.sleep(seconds)
    busy1, total1 = procs.machine_ticks()
    return 100 * (busy1 - busy0) / max(1, total1 - total0)


def _loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg()) + " (1, 5, 15 min)"


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text).strip("-")


def _asyncpg_dsn(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _amqp_host(url: str) -> str:
    from yarl import URL as YURL

    return YURL(url).host or "localhost"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


if __name__ == "__main__":
    sys.exit(main())
