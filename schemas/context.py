"""The request context: who calls, on behalf of which project, and what it may see."""

from __future__ import annotations

import copy
import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

from schemas.exceptions import InvalidRequest

READ_DELETED = ("no", "yes", "only")


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class RequestContext:
    """Nova's ``RequestContext`` (2012.2), minus what only makes sense in-process."""

    def __init__(self, user_id: str | None, project_id: str | None,
                 is_admin: bool | None = None, read_deleted: str = "no",
                 roles: list[str] | None = None, remote_address: str | None = None,
                 timestamp: dt.datetime | str | None = None, request_id: str | None = None,
                 auth_token: str | None = None, overwrite: bool = True,
                 quota_class: str | None = None, user_name: str | None = None,
                 project_name: str | None = None,
                 service_catalog: list[Any] | None = None,
                 instance_lock_checked: bool = False, **kwargs: Any) -> None:
        # Unknown keyword arguments are dropped as Nova drops them: newer callers may send
        # fields an older conductor does not know.
        self.user_id = user_id
        self.project_id = project_id
        self.roles = list(roles or [])
        self.is_admin = ("admin" in [r.lower() for r in self.roles]
                         if is_admin is None else bool(is_admin))
        self.read_deleted = read_deleted
        self.remote_address = remote_address
        if timestamp is None:
            timestamp = _utcnow()
        elif isinstance(timestamp, str):
            timestamp = dt.datetime.fromisoformat(timestamp)
        self.timestamp = timestamp
        self.request_id = request_id or f"req-{uuid.uuid4()}"
        self.auth_token = auth_token
        self.quota_class = quota_class
        self.user_name = user_name
        self.project_name = project_name
        self.service_catalog = [s for s in (service_catalog or [])
                                if isinstance(s, dict) and s.get("type") in ("volume",)]
        self.instance_lock_checked = instance_lock_checked

    @property
    def read_deleted(self) -> str:
        return self._read_deleted

    @read_deleted.setter
    def read_deleted(self, value: str) -> None:
        if value not in READ_DELETED:
            raise ValueError(f"read_deleted can only be one of 'no', 'yes' or 'only', "
                             f"not {value!r}")
        self._read_deleted = value

    @property
    def tenant(self) -> str | None:
        return self.project_id

    @property
    def user(self) -> str | None:
        return self.user_id

    def to_dict(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "project_id": self.project_id,
            "is_admin": self.is_admin,
            "read_deleted": self.read_deleted,
            "roles": list(self.roles),
            "remote_address": self.remote_address,
            "timestamp": self.timestamp,
            "request_id": self.request_id,
            "auth_token": self.auth_token,
            "quota_class": self.quota_class,
            "user_name": self.user_name,
            "project_name": self.project_name,
            "service_catalog": list(self.service_catalog),
            "instance_lock_checked": self.instance_lock_checked,
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RequestContext:
        """The context a caller sent over the wire, every field strictly typed.

        The constructor is lenient for in-process callers (``bool(is_admin)``); here a
        field of the wrong type is refused with InvalidRequest naming it, since a truthy
        ``is_admin: "no"`` or a list ``project_id`` would widen what the caller may see.
        Unknown fields are dropped, as Nova drops them.
        """
        if not isinstance(values, dict):
            raise InvalidRequest(reason="bad context: a context travels as a map")
        fields: dict[str, Any] = {}
        for name, check in _WIRE_FIELDS.items():
            if name in values:
                value = values[name]
                if not check(value):
                    raise InvalidRequest(reason=f"bad context: field {name!r} "
                                         f"{_EXPECTED[name]}, not {type(value).__name__}")
                fields[name] = value
        timestamp = fields.get("timestamp")
        if isinstance(timestamp, str):
            try:
                fields["timestamp"] = dt.datetime.fromisoformat(timestamp)
            except ValueError:
                raise InvalidRequest(reason="bad context: field 'timestamp' is not an ISO "
                                     "datetime") from None
        return cls(fields.pop("user_id", None), fields.pop("project_id", None), **fields)

    def elevated(self, read_deleted: str | None = None,
                 overwrite: bool = False) -> RequestContext:
        """A copy with admin rights (and the ``admin`` role), optionally another read_deleted."""
        ctx = copy.copy(self)
        ctx.roles = list(self.roles)
        ctx.is_admin = True
        if "admin" not in ctx.roles:
            ctx.roles.append("admin")
        if read_deleted is not None:
            ctx.read_deleted = read_deleted
        return ctx

    def __repr__(self) -> str:
        return (f"<RequestContext user={self.user_id!r} project={self.project_id!r} "
                f"admin={self.is_admin} read_deleted={self.read_deleted!r}>")


def _optional_str(value: Any) -> bool:
    return value is None or isinstance(value, str)


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def _timestamp(value: Any) -> bool:
    return value is None or isinstance(value, dt.datetime) or (
        isinstance(value, str) and len(value) <= 64)


def _roles(value: Any) -> bool:
    return value is None or (isinstance(value, list)
                             and all(isinstance(r, str) for r in value))


def _catalog(value: Any) -> bool:
    return value is None or isinstance(value, list)


_WIRE_FIELDS: dict[str, Callable[[Any], bool]] = {
    "user_id": _optional_str, "project_id": _optional_str,
    "is_admin": lambda v: v is None or isinstance(v, bool),
    "read_deleted": lambda v: isinstance(v, str) and v in READ_DELETED,
    "roles": _roles, "remote_address": _optional_str, "timestamp": _timestamp,
    "request_id": _optional_str, "auth_token": _optional_str, "overwrite": _is_bool,
    "quota_class": _optional_str, "user_name": _optional_str,
    "project_name": _optional_str, "service_catalog": _catalog,
    "instance_lock_checked": _is_bool,
}
_EXPECTED = {
    "is_admin": "must be a boolean or nil", "overwrite": "must be a boolean",
    "instance_lock_checked": "must be a boolean",
    "read_deleted": "must be one of 'no', 'yes' or 'only'",
    "roles": "must be an array of strings", "service_catalog": "must be an array or nil",
    "timestamp": "must be a datetime or an ISO string of at most 64 characters",
    **{name: "must be a string or nil" for name in (
        "user_id", "project_id", "remote_address", "request_id", "auth_token",
        "quota_class", "user_name", "project_name")},
}


def get_admin_context(read_deleted: str = "no") -> RequestContext:
    return RequestContext(user_id=None, project_id=None, is_admin=True,
                          read_deleted=read_deleted, overwrite=False)
