"""The load generator: N asyncio tasks calling in a loop through one client."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from bench import procs
from bench.procs import Server

Call = Callable[[], Awaitable[Any]]


@dataclass
class Result:
    """One measurement: a function on a target at a concurrency (one JSON line)."""

    mode: str
    target: str  # "conductor" or "floor"
    function: str
    concurrency: int
    status: str = "ok"  # "ok", "not implemented", "error: ..."
    label: str = ""  # what varies besides the function (a filter, a table size)
    duration_s: float = 0.0
    calls: int = 0
    calls_per_s: float = 0.0
    p50_ms: float = 0.0
    p90_ms: float = 0.0
    p99_ms: float = 0.0
    mean_ms: float = 0.0
    max_ms: float = 0.0
    errors: int = 0
    first_error: str | None = None
    server_cpu_pct: float = 0.0  # 100 = one core
    server_cpu_ms_per_call: float = 0.0  # the least noisy figure on a shared machine
    client_cpu_pct: float = 0.0  # 100 = one core
    machine_cpu_pct: float = 0.0  # 100 = every core busy
    server_reads_per_call: float = 0.0  # read system calls (sockets: AMQP + PostgreSQL)
    server_writes_per_call: float = 0.0  # write system calls: ~ messages sent per call
    workers: int = 1
    rss_mb: float = 0.0
    rss_peak_mb: float = 0.0
    rss_peak_total_mb: float = 0.0
    ratio_calls_per_s: float | None = None  # to the floor's, same function and concurrency
    ratio_p50: float | None = None
    ratio_cpu_per_call: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        extra = out.pop("extra")
        out.update(extra)
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}


@dataclass
class Snapshot:
    wall: float
    server_cpu: float
    client_cpu: float
    busy: int
    total: int
    reads: int
    writes: int


def snapshot(server: Server | None) -> Snapshot:
    busy, total = procs.machine_ticks()
    pids = server.pids() if server else []
    reads, writes = procs.syscalls(pids)
    return Snapshot(time.perf_counter(), procs.cpu_seconds(pids), time.process_time(), busy,
                    total, reads, writes)


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(q * len(sorted_values)) - 1))
    return sorted_values[index]


def fill(result: Result, latencies: list[float], window: float, first: Snapshot,
         last: Snapshot, server: Server | None) -> Result:
    lat = sorted(latencies)
    result.duration_s = window
    result.calls = len(lat)
    result.calls_per_s = len(lat) / window if window > 0 else 0.0
    result.p50_ms = percentile(lat, 0.50) * 1000
    result.p90_ms = percentile(lat, 0.90) * 1000
    result.p99_ms = percentile(lat, 0.99) * 1000
    result.mean_ms = (sum(lat) / len(lat) * 1000) if lat else 0.0
    result.max_ms = lat[-1] * 1000 if lat else 0.0
    wall = last.wall - first.wall
    if wall > 0:
        result.server_cpu_pct = 100 * (last.server_cpu - first.server_cpu) / wall
        result.client_cpu_pct = 100 * (last.client_cpu - first.client_cpu) / wall
    if lat:
        result.server_cpu_ms_per_call = 1000 * (last.server_cpu - first.server_cpu) / len(lat)
        result.server_reads_per_call = (last.reads - first.reads) / len(lat)
        result.server_writes_per_call = (last.writes - first.writes) / len(lat)
    if last.total > first.total:
        result.machine_cpu_pct = 100 * (last.busy - first.busy) / (last.total - first.total)
    if server is not None:
        mem = procs.memory(server)
        result.workers = len(server.workers())
        result.rss_mb, result.rss_peak_mb = mem.rss_mb, mem.peak_mb
        result.rss_peak_total_mb = mem.peak_total_mb
    return result


async def timed(result: Result, call: Call, *, concurrency: int, duration: float,
                warmup: float, server: Server | None,
                on_start: Callable[[], None] | None = None) -> Result:
    """Run ``call`` from ``concurrency`` tasks for ``warmup + duration`` seconds; keep the
    latencies of the calls started after the warm-up; ``on_start()`` when that begins."""
    start = time.perf_counter() + warmup
    end = start + duration
    latencies: list[float] = []
    errors = 0
    first_error: BaseException | None = None
    snaps: list[Snapshot] = []

    async def worker() -> None:
        nonlocal errors, first_error
        record = latencies.append
        clock = time.perf_counter
        while True:
            t0 = clock()
            if t0 >= end:
                return
            try:
                await call()
            except Exception as exc:
                if t0 >= start:
                    errors += 1
                    first_error = first_error or exc
                continue
            if t0 >= start:
                record(clock() - t0)

    async def sampler() -> None:
        await asyncio.sleep(max(0.0, start - time.perf_counter()))
        snaps.append(snapshot(server))
        if on_start is not None:
            on_start()
        await asyncio.sleep(max(0.0, end - time.perf_counter()))
        snaps.append(snapshot(server))

    await asyncio.gather(sampler(), *(worker() for _ in range(concurrency)))
    fill(result, latencies, duration, snaps[0], snaps[1], server)
    result.errors = errors
    if first_error is not None:
        result.first_error = f"{type(first_error).__name__}: {first_error}"[:300]
    return result


async def counted(pick: Callable[[], Call], *, total: int, concurrency: int,
                  timeout: float, on_done: Callable[[float, bool], None]) -> int:
    """Make ``total`` calls (``pick()`` gives each) from ``concurrency`` tasks, or stop at
    ``timeout`` seconds; ``on_done(latency, ok)`` after each.  Returns the calls made."""
    started = 0
    deadline = time.perf_counter() + timeout
    clock = time.perf_counter

    async def worker() -> None:
        nonlocal started
        while started < total and clock() < deadline:
            started += 1
            call = pick()
            t0 = clock()
            try:
                await call()
            except Exception:
                on_done(clock() - t0, False)
            else:
                on_done(clock() - t0, True)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return started
