"""Everything ``conductor serve`` can be told, in one place, built once and passed down.

Flags win over the environment, the environment over the defaults below; the command line
(:mod:`conductor.cli`) takes its defaults from here, so each is written once.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yarl

from client.urls import broker_url, broker_urls, joined

# Where a setting may also come from the environment (DESIGN.md "Public interface").
ENVIRONMENT = {
    "amqp_url": "CONDUCTOR_AMQP_URL",
    "db_url": "CONDUCTOR_DB_URL",
    "topic": "CONDUCTOR_TOPIC",
    "policy_file": "CONDUCTOR_POLICY",
    "metrics_port": "CONDUCTOR_METRICS_PORT",
    "log_format": "CONDUCTOR_LOG_FORMAT",
    "amqp_ca_file": "CONDUCTOR_AMQP_CA_FILE",
    "amqp_cert_file": "CONDUCTOR_AMQP_CERT_FILE",
    "amqp_key_file": "CONDUCTOR_AMQP_KEY_FILE",
    "amqp_auth": "CONDUCTOR_AMQP_AUTH",
    "amqp_password_file": "CONDUCTOR_AMQP_PASSWORD_FILE",
    "db_password_file": "CONDUCTOR_DB_PASSWORD_FILE",
}
# Passwords themselves may come from the environment too (never from a flag: the command
# line of a process is visible to every user of the machine).  A password file wins.
PASSWORD_ENVIRONMENT = {"amqp_url": "CONDUCTOR_AMQP_PASSWORD",
                        "db_url": "CONDUCTOR_DB_PASSWORD"}
_INTEGERS = {"metrics_port"}  # environment values are text

# The broker's delivery limit on the topic queue.  A message that kills its conductor (or
# its channel) before being acked comes back with its delivery count raised by one; after
# more than this many returns the broker dead-letters it.  Every such crash also returns,
# and counts once more, each innocent call the dying conductor held (up to --prefetch of
# them), in the order they were delivered, ahead of newer calls.  The server limits that
# exposure (after any start or channel recovery it holds one call at a time until the
# returned calls are drained), so an innocent call is held beside a poison message at one
# crash per conductor that took it at full prefetch: with W conductors sharing the topic,
# at most about W.  20 leaves room for that with any reasonable --workers while a poison
# message costs at most 21 restarts of one conductor, each after the first holding nothing
# but that message.
DEFAULT_MAX_DELIVERIES = 20


@dataclass(frozen=True)
class Settings:
    # Out of repr: a URL may hold a password.  amqp_url is completed with the TLS options
    # below at construction; from_sources puts the passwords in.
    amqp_url: str = field(default="amqp://guest:guest@localhost:5672/", repr=False)
    db_url: str = field(default="sqlite+aiosqlite:///conductor.sqlite", repr=False)
    topic: str = "conductor"
    workers: int = 1
    prefetch: int = 128  # unacked calls one process holds
    pool_size: int = 20  # calls running at once, a database connection each (+3 for the rest)
    max_message_size: int = 8 * 1024 * 1024
    classic_queue: bool = False  # opt out of the quorum topic queue
    max_deliveries: int = DEFAULT_MAX_DELIVERIES
    strict_values: bool = False
    sqlite_synchronous: bool = True
    db_wait: float = 30.0  # seconds an unreachable database is retried at start-up
    reply_retention: float = 3600.0  # seconds a write's reply stays replayable
    purge_interval: float = 60.0
    # No call holds a database connection longer (also PostgreSQL's statement_timeout);
    # a caller's sooner deadline cuts it shorter.
    max_call_seconds: float = 30.0
    clock_skew: float = 5.0  # tolerated between a caller's clock and ours
    db_retries: int = 5  # deadlocks and serialization failures retried this often
    db_retry_delay: float = 0.05  # first backoff, doubled each retry
    policy_file: str | None = None  # TOML: who may call what (conductor/policy.py)
    # "strict": a user context never reaches another project's rows (the default);
    # "nova": 2012.2's scoping exactly, for callers whose API layer checks ownership.
    isolation: str = "strict"
    metrics_port: int | None = None  # Prometheus /metrics, /healthz, /readyz
    metrics_host: str = "127.0.0.1"
    log_format: str = "text"  # or "json": one object per line
    slow_call_ms: float = 1000.0  # a call slower than this is logged
    debug: bool = False
    # TLS to the broker (amqps:// URLs): the CA its certificate must chain to, our client
    # certificate and key, and "external" to log in with that certificate.
    amqp_ca_file: str | None = None
    amqp_cert_file: str | None = None
    amqp_key_file: str | None = None
    amqp_auth: str = "plain"
    amqp_password_file: str | None = None  # read once, by from_sources
    db_password_file: str | None = None

    def __post_init__(self) -> None:
        if self.amqp_auth not in ("plain", "external"):
            raise ValueError(f"amqp_auth must be plain or external, not {self.amqp_auth!r}")
        # Frozen: the completed URL replaces the given one once, here.
        object.__setattr__(self, "amqp_url", joined([broker_url(
            url, ca_file=self.amqp_ca_file, cert_file=self.amqp_cert_file,
            key_file=self.amqp_key_file, external=self.amqp_auth == "external")
            for url in broker_urls(self.amqp_url)]))

    def secrets(self) -> list[str]:
        """The passwords in the URLs, for the log filter that hides them anywhere."""
        from sqlalchemy.engine import make_url

        found = [(yarl.URL(url).user, yarl.URL(url).password)
                 for url in broker_urls(self.amqp_url)]
        try:
            db = make_url(self.db_url)
            found.append((db.username, db.password))
        except Exception:  # unparseable: the engine will say so, masked
            pass
        # A password equal to its login (guest:guest) hides nothing and would mask the name.
        return [password for user, password in found if password and password != user]

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.topic}.dead"

    @property
    def dead_letter_exchange(self) -> str:
        return f"{self.topic}.dlx"


DEFAULTS = Settings()


def from_sources(flags: Mapping[str, Any] | None = None,
                 environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from flags (None or absent: not given) over the environment over defaults."""
    environ = os.environ if environ is None else environ
    given = {k: v for k, v in (flags or {}).items() if v is not None}
    values: dict[str, Any] = {}
    for f in fields(Settings):
        if f.name in given:
            values[f.name] = given[f.name]
        elif f.name in ENVIRONMENT and environ.get(ENVIRONMENT[f.name]):
            text = environ[ENVIRONMENT[f.name]]
            try:
                values[f.name] = int(text) if f.name in _INTEGERS else text
            except ValueError:
                raise ValueError(f"{ENVIRONMENT[f.name]}={text!r} is not a number") from None
    unknown = set(given) - {f.name for f in fields(Settings)}
    if unknown:
        raise TypeError(f"unknown settings: {', '.join(sorted(unknown))}")
    _put_passwords(values, environ)
    return Settings(**values)


def _put_passwords(values: dict[str, Any], environ: Mapping[str, str]) -> None:
    """Put the passwords from their files or the environment into the URLs, as URL
    objects (never formatted into text, so any character survives)."""
    for url_name, file_name in (("amqp_url", "amqp_password_file"),
                                ("db_url", "db_password_file")):
        path = values.get(file_name)
        if path:
            password = read_password(path)
        elif environ.get(PASSWORD_ENVIRONMENT[url_name]):
            password = environ[PASSWORD_ENVIRONMENT[url_name]]
        else:
            continue
        url = values.get(url_name, getattr(DEFAULTS, url_name))
        if url_name == "amqp_url":
            values[url_name] = joined([str(yarl.URL(one).with_password(password))
                                       for one in broker_urls(url)])
        else:
            from sqlalchemy.engine import make_url

            values[url_name] = make_url(url).set(password=password) \
                .render_as_string(hide_password=False)


def read_password(path: str) -> str:
    """The first line of ``path`` (a trailing newline is not part of the password)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read the password file {path!r}: {exc.strerror}") from None
    lines = text.splitlines()
    if not lines or not lines[0]:
        raise ValueError(f"the password file {path!r} is empty")
    return lines[0]
