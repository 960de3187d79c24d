"""Where the conductor's time goes: py-spy attached during a measurement, summarised.

``python -m bench.run --profile DIR`` attaches ``py-spy record`` (``pip install py-spy``;
not a project dependency) to the conductor for each measurement window and writes
``DIR/<function>-c<N>.txt`` (collapsed stacks) and a summary; ``python -m bench.profile
FILE...`` summarises existing collapsed-stack files.

Each sample is put in ONE bucket: the first rule below (in order) that matches its stack,
so the buckets add up to 100 % of the process's busy samples; a second view charges each
sample to the package of its running (leaf) function.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

# (bucket, regex on the ";"-joined "function (file:line)" frames, leaf only?); the first
# rule that matches wins.  py-spy cannot join a coroutine's stack across SQLAlchemy's greenlet
# hop, so some SQL samples have no handler frames: they land in "SQL, caller not visible".
RULES: list[tuple[str, str, bool]] = [
    ("db connect/close (pool overflow churn)",
     r"asyncpg/connect_utils\.py|AsyncAdapt_dbapi_connection\.create|"
     r"Connection\.close \(asyncpg/|_finalize_fairy", False),
    ("pool pre-ping (BEGIN; ';'; ROLLBACK)", r"_async_ping|do_ping", False),
    ("BEGIN", r"Transaction\.start \(asyncpg|_start_transaction", False),
    ("COMMIT / ROLLBACK", r"Transaction\.__commit|Transaction\.__rollback|"
     r"AsyncAdapt_asyncpg_connection\.(commit|rollback)", False),
    ("greenlet hops (SQLAlchemy async adaption)",
     r"sqlalchemy/util/concurrency\.py|greenlet", True),
    ("SQLAlchemy compile + cache key", r"_compile_w_cache|_generate_cache_key|"
     r"sqlalchemy/sql/compiler\.py|sqlalchemy/sql/cache_key\.py", False),
    ("statement construction (select/where per call)",
     r"(model_query|conductor/handlers/)(?!.*(execute|Session\.)).*sqlalchemy/sql/", False),
    ("relationship load: asyncpg round trip", r"Session\._load_relation.*;.*asyncpg/", False),
    ("relationship load: SQLAlchemy + rows", r"Session\._load_relation|Session\._load_tree",
     False),
    ("main statement: asyncpg round trip",
     r"Session\.(row|rows|execute|scalar|scalars|insert|update)\b.*;.*asyncpg/", False),
    ("main statement: SQLAlchemy execute + rows",
     r"Session\.(row|rows|execute|scalar|scalars|insert|update)\b", False),
    ("SQL, caller not visible: asyncpg", r"asyncpg/", False),
    ("SQL, caller not visible: SQLAlchemy", r"sqlalchemy/", False),
    ("reply publish (aio-pika/aiormq)", r"Server\._reply|Exchange\.publish|basic_publish",
     False),
    ("ack", r"_ack \(conductor|IncomingMessage\.ack|basic_ack", False),
    ("request decode (msgpack + envelope)", r"decode_request|unpackb", False),
    ("reply encode (msgpack)", r"encode_result|encode_error|packb", False),
    ("context building", r"RequestContext\.(from_dict|__init__)", False),
    ("argument binding", r"Signature\.bind|Signature\._bind", False),
    ("conductor dispatch/server/handler Python", r"conductor/(?!cli\.py)|schemas/", False),
    ("aio-pika delivery (message object, consumer task)",
     r"aio_pika/queue\.py|aio_pika/message\.py|aio_pika/tools\.py|create_task", False),
    ("AMQP frames in/out (aiormq/pamqp)", r"aiormq/|pamqp/", False),
    ("event loop (uvloop/asyncio internals)", r"asyncio/|uvloop", False),
]
_COMPILED = [(name, re.compile(rx), leaf) for name, rx, leaf in RULES]
_FRAME = re.compile(r"^(.*) \((.*?)(?::\d+)?\)$")
_LAYERS = [("asyncpg", "asyncpg/"), ("SQLAlchemy", "sqlalchemy/"), ("greenlet", "greenlet"),
           ("aiormq/pamqp", "aiormq/"), ("aiormq/pamqp", "pamqp/"), ("aio-pika", "aio_pika/"),
           ("msgpack", "msgpack/"), ("conductor/schemas", "conductor/"),
           ("conductor/schemas", "schemas/"), ("asyncio/uvloop", "asyncio/"),
           ("asyncio/uvloop", "uvloop")]


def load(path: Path) -> list[tuple[list[str], int]]:
    samples = []
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            samples.append(([f for f in stack.split(";") if f], int(count)))
    return samples


def bucket(frames: list[str]) -> str:
    joined = ";".join(frames)
    leaf = frames[-1] if frames else ""
    for name, rx, leaf_only in _COMPILED:
        if rx.search(leaf if leaf_only else joined):
            return name
    return "other"


def layer(frames: list[str]) -> str:
    leaf = frames[-1] if frames else ""
    return next((name for name, marker in _LAYERS if marker in leaf), "other (stdlib, ...)")


def summarise(samples: list[tuple[list[str], int]], top: int = 15) -> str:
    total = sum(n for _, n in samples) or 1
    buckets: Counter[str] = Counter()
    layers: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    for frames, n in samples:
        buckets[bucket(frames)] += n
        layers[layer(frames)] += n
        if frames:
            m = _FRAME.match(frames[-1])
            leaves[f"{m.group(1)} ({m.group(2)})" if m else frames[-1]] += n
    lines = [f"{total} samples (busy time only)", "  share  bucket"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in buckets.most_common()]
    lines += ["  share  layer (package of the running function)"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in layers.most_common()]
    lines += ["  share  top self frames (leaf function; C code is charged to its caller)"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in leaves.most_common(top)]
    return "\n".join(lines)


def find_py_spy() -> str:
    exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(exe).exists():
        raise FileNotFoundError("py-spy is not installed: pip install py-spy")
    return exe


class Recorder:
    """``py-spy record`` attached to ``pid`` for ``seconds``, collapsed stacks to ``out``."""

    def __init__(self, pid: int, seconds: float, out: Path, rate: int = 250) -> None:
        exe = find_py_spy()
        self.out = out
        self.proc = subprocess.Popen(
            [exe, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))),
             "--rate", str(rate), "--format", "raw", "--output", str(out), "--nonblocking"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def finish(self, timeout: float = 30.0) -> str:
        try:
            _, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        if not self.out.exists():
            return f"py-spy wrote nothing: {err.decode(errors='replace').strip()[-300:]}"
        summary = summarise(load(self.out))
        self.out.with_suffix(".summary.txt").write_text(summary + "\n")
        return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+", type=Path, help="py-spy --format raw output")
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args(argv)
    for path in args.files:
        print(f"== {path}")
        print(summarise(load(path), args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
