"""Who may call what: a policy per broker user, read from a TOML file.

The caller's identity is the AMQP ``user_id`` property, which RabbitMQ checks against the
login of the publishing connection, so a caller cannot claim another's.  A policy says, per
broker user (and for ``"*"``, everyone not listed), whether its callers may send admin
contexts, which functions they may call, and optionally which projects a non-admin context
of theirs may name::

    [users.compute]
    admin = false
    functions = ["read", "instance_update", "instance_info_cache_*"]
    projects = ["*"]

``functions`` holds function names, shell-style globs (``instance_*``) and the catalog's
classes ``read``, ``write`` and ``admin`` (functions whose access check is admin-only).
``admin`` is false unless given; ``functions`` is empty (nothing allowed) unless given;
``projects`` absent means any project.  Without a policy file everything is allowed.
"""

from __future__ import annotations

import fnmatch
import logging
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from schemas import catalog, exceptions
from schemas.context import RequestContext

log = logging.getLogger(__name__)

CLASSES = frozenset({"read", "write", "admin"})
DEFAULT_USER = "*"


class PolicyError(ValueError):
    """The policy file is unreadable or malformed; the message says where."""


@dataclass(frozen=True)
class Rule:
    admin: bool
    functions: tuple[str, ...]
    projects: tuple[str, ...] | None  # None: any project

    def allows_function(self, func: catalog.Function) -> bool:
        for entry in self.functions:
            if entry in CLASSES:
                if entry == "admin" and func.access == "admin":
                    return True
                if entry == func.kind:
                    return True
            elif fnmatch.fnmatchcase(func.name, entry):
                return True
        return False

    def allows_project(self, project_id: str | None) -> bool:
        if self.projects is None:
            return True
        return any(fnmatch.fnmatchcase(project_id or "", p) for p in self.projects)


@dataclass(frozen=True)
class Policy:
    rules: dict[str, Rule]
    source: str = "<memory>"

    def rule_for(self, broker_user: str) -> Rule | None:
        return self.rules.get(broker_user) or self.rules.get(DEFAULT_USER)

    def check(self, broker_user: str | None, func: catalog.Function,
              context: RequestContext) -> None:
        """Raise NotAuthorized naming the function unless the policy allows the call."""
        if not broker_user:
            raise _refused(func, "the message carries no AMQP user_id, which the policy "
                                 "in force requires")
        rule = self.rule_for(broker_user)
        if rule is None:
            raise _refused(func, f"broker user {broker_user!r} has no entry in the policy")
        if not rule.allows_function(func):
            raise _refused(func, f"broker user {broker_user!r} may not call it")
        if context.is_admin and not rule.admin:
            raise _refused(func, f"broker user {broker_user!r} may not send admin contexts")
        if not context.is_admin and not rule.allows_project(context.project_id):
            raise _refused(func, f"broker user {broker_user!r} may not act for project "
                                 f"{_short(context.project_id)!r}")

    def describe(self) -> str:
        return f"{self.source} ({len(self.rules)} broker users)"


def _refused(func: catalog.Function, why: str) -> exceptions.NotAuthorized:
    return exceptions.NotAuthorized(f"Not authorized to call {func.name}: {why}.",
                                    function=func.name)


def _short(value: Any, limit: int = 64) -> str:
    text = str(value)
    return text if len(text) <= limit else text[:limit] + "..."


def parse(data: dict[str, Any], source: str = "<memory>") -> Policy:
    users = data.get("users")
    unknown = set(data) - {"users"}
    if unknown:
        raise PolicyError(f"{source}: unknown top-level keys {sorted(unknown)}; "
                          "expected [users.NAME] tables")
    if not isinstance(users, dict) or not users:
        raise PolicyError(f"{source}: no [users.NAME] tables")
    rules = {}
    for name, entry in users.items():
        where = f"{source}: [users.{name}]"
        if not isinstance(entry, dict):
            raise PolicyError(f"{where} must be a table")
        extra = set(entry) - {"admin", "functions", "projects"}
        if extra:
            raise PolicyError(f"{where}: unknown keys {sorted(extra)}")
        admin = entry.get("admin", False)
        if not isinstance(admin, bool):
            raise PolicyError(f"{where}: admin must be true or false")
        functions = _strings(entry.get("functions", []), f"{where}: functions")
        for item in functions:
            if item not in CLASSES and not any(c in item for c in "*?[") \
                    and catalog.get(item) is None:
                raise PolicyError(f"{where}: {item!r} is neither a function of the "
                                  "catalog, a glob, nor one of read/write/admin")
        projects = entry.get("projects")
        rules[name] = Rule(admin, tuple(functions),
                           None if projects is None
                           else tuple(_strings(projects, f"{where}: projects")))
    return Policy(rules, source)


def _strings(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PolicyError(f"{where} must be a list of strings")
    return list(value)


def load(path: str | Path) -> Policy:
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise PolicyError(f"cannot read the policy file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{path}: not valid TOML: {exc}") from None
    return parse(data, str(path))


class PolicyHolder:
    """The policy in force; ``reload()`` (on SIGHUP) swaps it atomically or keeps it."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = path
        self.policy: Policy | None = load(path) if path else None

    def check(self, broker_user: str | None, func: catalog.Function,
              context: RequestContext) -> None:
        policy = self.policy  # one read: a reload mid-call changes nothing for this call
        if policy is not None:
            policy.check(broker_user, func, context)

    def reload(self) -> bool:
        if not self.path:
            return False
        try:
            self.policy = load(self.path)
        except PolicyError as exc:
            log.error("policy not reloaded, the previous one stays in force: %s", exc)
            return False
        log.warning("policy reloaded: %s", self.policy.describe())
        return True

    def describe(self) -> str:
        return self.policy.describe() if self.policy is not None else "none"
