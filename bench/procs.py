"""Server subprocesses of the benchmark, and what /proc says about them (no psutil)."""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
_LIVE: set[Server] = set()


class BenchError(RuntimeError):
    """A failure the benchmark explains in one message (no traceback)."""


class Server:
    """A server process in its own process group (its workers included), logging to a file."""

    def __init__(self, name: str, argv: list[str], log_dir: Path, cwd: Path = ROOT) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "wb")  # closed in stop()
        self.popen = subprocess.Popen(argv, cwd=cwd, stdout=self._log,
                                      stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                      start_new_session=True)
        self.pid = self.popen.pid
        _LIVE.add(self)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def pids(self) -> list[int]:
        """The process and all its descendants."""
        out, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            out.append(pid)
            todo.extend(children(pid))
        return out

    def workers(self) -> list[int]:
        """The processes that serve: the leaves of the tree (the process itself if alone)."""
        pids = self.pids()
        return [p for p in pids if not children(p)] or pids

    def stop(self, timeout: float = 15.0) -> None:
        if self.alive():
            self._signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.popen.wait(5)
        else:
            self._signal(signal.SIGKILL)  # orphaned workers of a dead supervisor, if any
        self._log.close()
        _LIVE.discard(self)

    def _signal(self, sig: int) -> None:
        try:
            os.killpg(self.pid, sig)  # the group is ours: start_new_session=True
        except ProcessLookupError:
            pass


def children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            text = Path(f"/proc/{pid}/task/{tid}/children").read_text()
        except OSError:
            continue
        out.extend(int(p) for p in text.split())
    return out


def status_kb(pid: int, field: str) -> int:
    """A ``VmRSS``/``VmHWM``-style field of /proc/<pid>/status in kB (0 if gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLK_TCK


def syscalls(pids: list[int]) -> tuple[int, int]:
    """(read, write) system calls made so far by ``pids`` (/proc/<pid>/io)."""
    reads = writes = 0
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/io").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("syscr:"):
                reads += int(line.split()[1])
            elif line.startswith("syscw:"):
                writes += int(line.split()[1])
    return reads, writes


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    total = sum(fields[:8])
    return total - idle, total


@dataclass
class Memory:
    rss_mb: float  # current, max over worker processes
    peak_mb: float  # VmHWM, max over worker processes
    peak_total_mb: float  # VmHWM summed over the whole process tree


def memory(server: Server) -> Memory:
    workers = server.workers()
    rss = [status_kb(p, "VmRSS") for p in workers]
    hwm = [status_kb(p, "VmHWM") for p in workers]
    total = sum(status_kb(p, "VmHWM") for p in server.pids())
    return Memory(max(rss, default=0) / 1024, max(hwm, default=0) / 1024, total / 1024)


def log_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="conductor-bench-"))


def python() -> str:
    return sys.executable


def _stop_all() -> None:
    for server in list(_LIVE):
        try:
            server.stop(timeout=5)
        except Exception:  # exiting anyway
            pass


atexit.register(_stop_all)


def stop_all() -> None:
    _stop_all()

