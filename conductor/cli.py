"""``conductor``: serve, db sync, call, api-coverage, status, events tail, schema export."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import traceback
from types import TracebackType
from typing import Any

from conductor import logs, ops
from conductor.db.engine import safe_url
from conductor.settings import DEFAULTS, Settings, from_sources

log = logging.getLogger("conductor")
WORKER_INDEX = "CONDUCTOR_WORKER_INDEX"  # set by --workers for each worker it starts


def _common(p: argparse.ArgumentParser, *, amqp: bool = True, db: bool = True) -> None:
    # Defaults None: the environment, then the Settings defaults, fill what is not given.
    if amqp:
        p.add_argument("--amqp-url", default=None, action="append",
                       help=f"broker URL (env CONDUCTOR_AMQP_URL; default "
                            f"{DEFAULTS.amqp_url}); the nodes of a cluster: give it once "
                            f"per node or as URLs separated by commas, tried in turn")
        p.add_argument("--topic", default=None,
                       help=f"queue the conductor consumes (env CONDUCTOR_TOPIC; default "
                            f"{DEFAULTS.topic})")
        p.add_argument("--amqp-ca-file", metavar="FILE", default=None,
                       help="amqps:// only: the CA the broker's certificate must chain to "
                            "(env CONDUCTOR_AMQP_CA_FILE; default: the system's CAs)")
        p.add_argument("--amqp-cert-file", metavar="FILE", default=None,
                       help="amqps:// only: our client certificate "
                            "(env CONDUCTOR_AMQP_CERT_FILE)")
        p.add_argument("--amqp-key-file", metavar="FILE", default=None,
                       help="the client certificate's key (env CONDUCTOR_AMQP_KEY_FILE)")
        p.add_argument("--amqp-auth", choices=["plain", "external"], default=None,
                       help="plain: the URL's user and password (default); external: log "
                            "in with the client certificate (env CONDUCTOR_AMQP_AUTH)")
        p.add_argument("--amqp-password-file", metavar="FILE", default=None,
                       help="the broker password, first line of FILE, replacing the URL's "
                            "(env CONDUCTOR_AMQP_PASSWORD_FILE, or the password itself in "
                            "CONDUCTOR_AMQP_PASSWORD)")
    if db:
        p.add_argument("--db-url", default=None,
                       help=f"database URL (env CONDUCTOR_DB_URL; default {DEFAULTS.db_url})")
        p.add_argument("--db-password-file", metavar="FILE", default=None,
                       help="the database password, first line of FILE, replacing the "
                            "URL's (env CONDUCTOR_DB_PASSWORD_FILE, or the password itself "
                            "in CONDUCTOR_DB_PASSWORD)")
    p.add_argument("--log-level", default=os.environ.get("CONDUCTOR_LOG_LEVEL") or "INFO")


class _Retired(argparse.Action):
    """A flag that used to exist: refuse it with what to do instead."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        parser.error(f"{option_string} is retired: {self.help}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="conductor", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="consume the topic queue and answer calls")
    _common(serve)
    serve.add_argument("--workers", type=int, default=DEFAULTS.workers,
                       help="number of conductor processes sharing the topic")
    serve.add_argument("--prefetch", type=int, default=DEFAULTS.prefetch,
                       help="unacked calls one process holds (concurrency bound)")
    serve.add_argument("--pool-size", type=int, default=DEFAULTS.pool_size,
                       help="calls running at once per process, each on its own database "
                            "connection (the process opens up to this + 3)")
    serve.add_argument("--max-message-size", type=int, default=DEFAULTS.max_message_size,
                       help="requests larger than this many bytes are refused")
    serve.add_argument("--classic-queue", action="store_true",
                       help="declare the topic queue as a classic queue: no delivery limit, "
                            "no dead-lettering of poison, no replication")
    serve.add_argument("--quorum-queues", action=_Retired, nargs=0,
                       help="the topic queue is a quorum queue by default now; drop the "
                            "flag (--classic-queue opts out)")
    serve.add_argument("--strict-values", action="store_true",
                       help="refuse value keys that are not columns (InvalidInput)")
    serve.add_argument("--sqlite-no-sync", action="store_true",
                       help="SQLite only: do not fsync writes (fast, not crash-safe)")
    serve.add_argument("--db-wait", type=float, default=DEFAULTS.db_wait,
                       help="seconds to retry an unreachable database at start-up")
    serve.add_argument("--reply-retention", type=float, default=DEFAULTS.reply_retention,
                       help="seconds a write's reply is kept to answer a redelivery or retry")
    serve.add_argument("--max-deliveries", type=int, default=DEFAULTS.max_deliveries,
                       help="the topic queue's x-delivery-limit: a message the broker "
                            "returned more often is dead-lettered to <topic>.dead")
    serve.add_argument("--max-call-seconds", type=float, default=DEFAULTS.max_call_seconds,
                       help="no call runs longer (also PostgreSQL's statement_timeout); a "
                            "caller's sooner deadline cuts it shorter")
    serve.add_argument("--policy", metavar="FILE", default=None,
                       help="TOML policy: per broker user, admin contexts, functions and "
                            "projects allowed (env CONDUCTOR_POLICY; reloaded on SIGHUP)")
    serve.add_argument("--isolation", choices=["strict", "nova"], default=DEFAULTS.isolation,
                       help="strict (default): a user context never reaches another "
                            "project's rows; nova: 2012.2's scoping, for callers that "
                            "check ownership themselves")
    serve.add_argument("--metrics-port", type=int, default=None,
                       help="serve Prometheus /metrics, /healthz and /readyz on this port "
                            "(env CONDUCTOR_METRICS_PORT; worker i of --workers uses +i)")
    serve.add_argument("--metrics-host", default=DEFAULTS.metrics_host,
                       help="address the metrics port listens on")
    serve.add_argument("--log-format", choices=["text", "json"], default=None,
                       help="text (default) or json: one object per line "
                            "(env CONDUCTOR_LOG_FORMAT)")
    serve.add_argument("--slow-call-ms", type=float, default=DEFAULTS.slow_call_ms,
                       help="log every call slower than this")
    serve.add_argument("--debug", action="store_true",
                       help="send server tracebacks to callers in RemoteError")

    db = sub.add_parser("db", help="database schema")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    sync = db_sub.add_parser("sync", help="create or upgrade the schema to the latest")
    _common(sync, amqp=False)
    version = db_sub.add_parser("version", help="print the schema revision")
    _common(version, amqp=False)

    call = sub.add_parser("call", help="call one API function and print the result")
    _common(call, db=False)
    call.add_argument("method")
    call.add_argument("args", nargs="*", help="positional arguments, each JSON or a string")
    call.add_argument("--kwargs", default="{}", help="keyword arguments as a JSON object")
    call.add_argument("--user", default=None, help="user id (default: admin context)")
    call.add_argument("--project", default=None, help="project id")
    call.add_argument("--read-deleted", default="no", choices=["no", "yes", "only"])
    call.add_argument("--timeout", type=float, default=30.0)
    call.add_argument("--broker-user", default=None,
                      help="the message's AMQP user_id, which the broker checks against "
                           "the login (default: the URL's user); needed with --amqp-auth "
                           "external: the name the broker takes from the certificate")

    cov = sub.add_parser("api-coverage", help="how many catalog functions are implemented")
    cov.add_argument("--missing", action="store_true", help="list the missing ones")
    cov.add_argument("--log-level", default="WARNING")
    ops.add_commands(sub, _common)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = _resolve_sources(args)
    except ValueError as exc:
        print(f"conductor: {logs.redact(str(exc))}", file=sys.stderr)
        return 2
    # Whatever a library puts in a log line or a traceback, these never reach the output.
    logs.hide(*settings.secrets())
    sys.excepthook = _redacted_traceback
    log_format = getattr(args, "log_format", None) or \
        os.environ.get("CONDUCTOR_LOG_FORMAT") or "text"
    logs.configure(log_format, args.log_level.upper())
    if args.command == "serve":
        # The start-up schema check goes through Alembic, which is chatty at INFO.
        logging.getLogger("alembic").setLevel(logging.WARNING)
    if args.command == "serve":
        return _serve(args, settings)
    if args.command == "db":
        return _db(args)
    if args.command == "call":
        return _call(args)
    if args.command in ops.COMMANDS:
        return ops.run(args)
    return _coverage(args)


def _redacted_traceback(kind: type[BaseException], exc: BaseException,
                        tb: TracebackType | None) -> None:
    sys.stderr.write(logs.redact("".join(traceback.format_exception(kind, exc, tb))))


# The connection flags of every command (_common), by their Settings names.
_TLS_AND_SECRETS = ("amqp_ca_file", "amqp_cert_file", "amqp_key_file", "amqp_auth",
                    "amqp_password_file", "db_password_file")
_CONNECTION = ("amqp_url", "db_url", "topic", *_TLS_AND_SECRETS)


def _resolve_sources(args: argparse.Namespace) -> Settings:
    """The settings, built once (password files are read here and nowhere else); the
    broker, database and topic flags are set to the complete values."""
    if getattr(args, "amqp_url", None):
        args.amqp_url = ",".join(args.amqp_url)  # --amqp-url given once per node
    if args.command == "serve":
        resolved = serve_settings(args)
    else:
        resolved = from_sources({n: getattr(args, n) for n in _CONNECTION
                                 if hasattr(args, n)})
    for name in ("amqp_url", "db_url", "topic"):
        if hasattr(args, name):
            setattr(args, name, getattr(resolved, name))
    return resolved


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    if args.workers > 1:
        return _serve_workers(args)
    try:
        import uvloop
    except ImportError:
        pass
    else:
        uvloop.install()
    from conductor.app import run

    try:
        return asyncio.run(run(settings))
    except KeyboardInterrupt:
        return 0


def serve_settings(args: argparse.Namespace) -> Settings:
    return from_sources({
        "amqp_url": args.amqp_url, "db_url": args.db_url, "topic": args.topic,
        "workers": args.workers, "prefetch": args.prefetch, "pool_size": args.pool_size,
        "max_message_size": args.max_message_size, "classic_queue": args.classic_queue,
        "max_deliveries": args.max_deliveries, "strict_values": args.strict_values,
        "sqlite_synchronous": not args.sqlite_no_sync, "db_wait": args.db_wait,
        "reply_retention": args.reply_retention, "max_call_seconds": args.max_call_seconds,
        "policy_file": args.policy, "isolation": args.isolation,
        "metrics_port": _worker_port(args.metrics_port),
        "metrics_host": args.metrics_host, "log_format": args.log_format,
        "slow_call_ms": args.slow_call_ms, "debug": args.debug,
        **{n: getattr(args, n) for n in _TLS_AND_SECRETS}})


def _worker_port(port: int | None) -> int | None:
    """Worker i of ``--workers N`` serves its metrics on the given port + i."""
    env_port = os.environ.get("CONDUCTOR_METRICS_PORT")
    if port is None and env_port:
        port = int(env_port)
    if port is None:
        return None
    return port + int(os.environ.get(WORKER_INDEX, "0") or 0)


def _serve_workers(args: argparse.Namespace) -> int:
    argv = [a for a in sys.argv[1:]]
    child_args = [sys.executable, "-m", "conductor.cli", *_strip_workers(argv)]
    procs = [subprocess.Popen(child_args, env={**os.environ, WORKER_INDEX: str(i)})
             for i in range(args.workers)]
    # SIGHUP reaches every worker too: each reloads the policy.
    log.info("started %d workers: %s", len(procs), ", ".join(str(p.pid) for p in procs))

    def forward(signum: int, _frame: Any) -> None:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGHUP, forward)
    codes = [p.wait() for p in procs]
    return max(codes, default=0)


def _strip_workers(argv: list[str]) -> list[str]:
    out: list[str] = []
    skip = False
    for a in argv:
        if skip:
            skip = False
            continue
        if a == "--workers":
            skip = True
            continue
        if a.startswith("--workers="):
            continue
        out.append(a)
    return out


def _db(args: argparse.Namespace) -> int:
    from conductor.db import migrate

    if args.db_command == "sync":
        log.info("upgrading %s to %s", safe_url(args.db_url), migrate.head_revision())
        migrate.upgrade(args.db_url)
        log.info("schema is at %s", migrate.head_revision())
        return 0

    async def show() -> None:
        from conductor.db.engine import make_engine

        engine = make_engine(args.db_url)
        try:
            current = await migrate.current_revision(engine)
        finally:
            await engine.dispose()
        print(f"current: {current or 'none'}  head: {migrate.head_revision()}")

    asyncio.run(show())
    return 0


def _parse_arg(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _call(args: argparse.Namespace) -> int:
    from client import ConductorClient
    from schemas import exceptions
    from schemas.context import RequestContext, get_admin_context

    if args.user or args.project:
        ctxt = RequestContext(args.user, args.project, read_deleted=args.read_deleted)
    else:
        ctxt = get_admin_context(read_deleted=args.read_deleted)
    positional = [_parse_arg(a) for a in args.args]
    kwargs = json.loads(args.kwargs)

    try:
        client = ConductorClient(args.amqp_url, topic=args.topic, timeout=args.timeout,
                                 user_id=args.broker_user)
    except ValueError as exc:
        print(f"conductor: {logs.redact(str(exc))}", file=sys.stderr)
        return 2

    async def go() -> Any:
        async with client as db:
            return await db.call(args.method, ctxt, *positional, **kwargs)

    try:
        result = asyncio.run(go())
    except exceptions.NovaException as exc:
        print(f"{type(exc).__name__}: {logs.redact(str(exc))}", file=sys.stderr)
        return 1
    except TypeError as exc:
        print(f"TypeError: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2, default=_json_default, sort_keys=False))
    return 0


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    return str(obj)


def _coverage(args: argparse.Namespace) -> int:
    from conductor.handlers import DECLARED_ONLY, load_all
    from schemas import catalog

    handlers = load_all()
    remote = catalog.remote_functions()
    local = [f for f in catalog.FUNCTIONS if f.kind == "local"]
    done = [f for f in remote if f.name in handlers]
    declared = [f for f in done if f.name in DECLARED_ONLY]
    # The condition builders run on the caller's side; the client implements them.
    total = len(remote) + len(local)
    print(f"implemented: {len(done) + len(local)}/{total} "
          f"({len(done)}/{len(remote)} remote functions, {len(local)} client-side; "
          f"{len(declared)} of them declared-only in Nova 2012.2, answering "
          f"NotImplementedError as the contract says)")
    if args.missing:
        for f in remote:
            if f.name not in handlers:
                print(f"  missing: {f.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
