"""Nova's exception hierarchy, as the conductor's callers see it.

An exception travels as ``{"class", "message", "kwargs"}``; the client rebuilds it with
:func:`from_wire`, so the caller catches the same class with the same ``kwargs`` and
message that the handler raised.  Class names, parents, keyword arguments and message
templates follow ``nova/exception.py`` at 2012.2.
"""

from __future__ import annotations

from typing import Any


class NovaException(Exception):
    """Base class: ``message`` is a %-template formatted with the keyword arguments."""

    message = "An unknown exception occurred."
    code = 500
    # Which queued call of a job queue failed (database-snapshots.md); None elsewhere.
    batch_index: int | None = None

    def __init__(self, message: str | None = None, **kwargs: Any) -> None:
        self.kwargs = dict(kwargs)
        if "code" not in self.kwargs:
            self.kwargs["code"] = self.code
        if not message:
            try:
                message = self.message % self.kwargs
            except Exception:  # noqa: BLE001 - any formatting failure falls back, as in Nova
                # Nova falls back to the raw template when the kwargs do not fit it.
                message = self.message
        self.msg = message
        super().__init__(message)

    def _wire_kwargs(self) -> dict[str, Any]:
        # ``code`` is implied by the class; keep it only when the raiser overrode it.
        kwargs = dict(self.kwargs)
        if kwargs.get("code") == type(self).code:
            del kwargs["code"]
        return kwargs

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self).__name__, self.msg, self._wire_kwargs()))

    def to_wire(self) -> dict[str, Any]:
        return {"class": type(self).__name__, "message": self.msg,
                "kwargs": self._wire_kwargs()}


def _rebuild(name: str, message: str, kwargs: dict[str, Any]) -> Exception:
    return from_wire({"class": name, "message": message, "kwargs": kwargs})


# --- RPC errors: raised by the client or the server machinery, not by handlers -------


class RPCError(NovaException):
    message = "RPC error: %(reason)s"


class RPCTimeout(RPCError):
    message = "Timed out after %(timeout)s s waiting for a reply to %(method)s"
    code = 504


class NoConductor(RPCError):
    """The call could not be routed: no queue is bound to the topic."""

    message = "No conductor consumes topic %(topic)s; %(method)s was not delivered"
    code = 503


class ConnectionLost(RPCError):
    message = "Connection to the broker was lost while waiting for %(method)s"
    code = 503


class InvalidRequest(RPCError):
    """The conductor could not decode, validate or dispatch the request."""

    message = "Invalid request: %(reason)s"
    code = 400


class RemoteError(RPCError):
    """A server-side exception outside this hierarchy: class name and message only."""

    message = "Remote error: %(exc_type)s %(value)s"

    def __init__(self, exc_type: str | None = None, value: str | None = None,
                 traceback: str | None = None, **kwargs: Any) -> None:
        self.exc_type = exc_type
        self.value = value
        self.traceback = traceback
        super().__init__(exc_type=exc_type, value=value, traceback=traceback, **kwargs)


class CallTimeout(RPCError):
    """The conductor cancelled the call: it ran past its caller's deadline or past the
    conductor's ``--max-call-seconds``.  A write that timed out was rolled back."""

    message = "%(method)s was cancelled after %(seconds)s s (%(limit)s)"
    code = 504


class PoisonMessage(RPCError):
    """The message was redelivered past the limit (it kept killing its conductor)."""

    message = ("%(method)s was delivered more than %(limit)s times without completing; "
               "it was dead-lettered")


class UnsupportedVersion(RPCError):
    """A request of a protocol version the conductor does not speak (a newer minor)."""

    message = ("%(method)s was sent as protocol version %(version)s; this conductor "
               "speaks at most %(supported)s")
    code = 400


class VersionCapExceeded(UnsupportedVersion):
    """Refused by the client, before sending: the function is newer than its version cap."""

    message = ("%(method)s needs protocol version %(version)s, above this client's "
               "version_cap %(version_cap)s; it was not sent")


class UserIdRejected(RPCError):
    """The broker refused the message's AMQP ``user_id``: it is not the connection's login."""

    message = ("The broker refused %(method)s: user_id %(user_id)r is not the login of "
               "this connection (%(reason)s)")
    code = 403


class NotImplementedInConductor(RPCError):
    message = "%(method)s is in the catalog but the conductor does not implement it yet"
    code = 501


# --- Nova's hierarchy ---------------------------------------------------------------
# (generated from spec/; every class the spec names, with Nova's kwargs and messages)

# <nova-exceptions>

# --- Authorization (403) --------------------------------------------------------------


class NotAuthorized(NovaException):
    message = "Not authorized."
    code = 403


class AdminRequired(NotAuthorized):
    message = "User does not have admin privileges"


# --- Invalid parameters (400) ---------------------------------------------------------


class Invalid(NovaException):
    message = "Unacceptable parameters."
    code = 400


class InvalidInput(Invalid):
    message = "Invalid input received: %(reason)s"


class InvalidUnicodeParameter(Invalid):
    message = "Invalid Parameter: Unicode is not supported by the current database."


class InvalidSortKey(Invalid):
    """Nova 2012.2 keeps this in ``nova/common/sqlalchemyutils.py``; the conductor
    raises it for an unknown ``sort_key`` (the spec's recommended departure)."""

    message = "Sort key supplied was not valid."


class InvalidUUID(Invalid):
    message = "Expected a uuid but received %(uuid)s."


class InstanceInvalidState(Invalid):
    message = ("Instance %(instance_uuid)s in %(attr)s %(state)s. Cannot "
               "%(method)s while the instance is in this state.")


class InvalidReservationExpiration(Invalid):
    message = "Invalid reservation expiration %(expire)s."


class InvalidQuotaValue(Invalid):
    message = ("Change would make usage less than 0 for the following "
               "resources: %(unders)s")


# --- Preconditions (412) and generic failures (500) -----------------------------------


class ConstraintNotMet(NovaException):
    message = "Constraint not met."
    code = 412


class UnexpectedTaskStateError(NovaException):
    message = ("unexpected task state: expecting %(expected)s but "
               "the actual state is %(actual)s")


class VirtualInterfaceCreateException(NovaException):
    message = "Virtual Interface creation failed"


class TaskAlreadyRunning(NovaException):
    message = "Task %(task_name)s is already running on host %(host)s"


class TaskNotRunning(NovaException):
    message = "Task %(task_name)s is not running on host %(host)s"


# --- Database errors --------------------------------------------------------------------


class DBError(NovaException):
    """Wraps a database-implementation exception; the message is its text.

    Only the text travels over RPC: a rebuilt ``DBError`` has ``inner_exception = None``.
    """

    inner_exception: BaseException | None = None

    def __init__(self, inner_exception: BaseException | None = None,
                 **kwargs: Any) -> None:
        self.inner_exception = inner_exception
        message = str(inner_exception) if inner_exception is not None else None
        super().__init__(message, **kwargs)


class DBConnectionError(DBError):
    """Our addition: the database connection was lost or refused."""

    message = "Database connection lost: %(reason)s"


# --- Module-level exceptions of nova/db/api.py (no template of their own) ------------


class NoMoreNetworks(NovaException):
    """No more available networks."""


class NoMoreTargets(NovaException):
    """No more available targets."""


# --- Not found (404): generic, instances, hosts and services --------------------------


class NotFound(NovaException):
    message = "Resource could not be found."
    code = 404


class InstanceNotFound(NotFound):
    message = "Instance %(instance_id)s could not be found."


class MarkerNotFound(NotFound):
    message = "Marker %(marker)s could not be found."


class ServiceNotFound(NotFound):
    message = "Service %(service_id)s could not be found."


class HostNotFound(NotFound):
    message = "Host %(host)s could not be found."


class ComputeHostNotFound(HostNotFound):
    message = "Compute host %(host)s could not be found."


class HostBinaryNotFound(NotFound):
    message = "Could not find binary %(binary)s on host %(host)s."


# --- Not found: migrations, key pairs, consoles, images -------------------------------


class MigrationNotFound(NotFound):
    message = "Migration %(migration_id)s could not be found."


class MigrationNotFoundByStatus(MigrationNotFound):
    message = ("Migration not found for instance %(instance_id)s "
               "with status %(status)s.")


class KeypairNotFound(NotFound):
    message = "Keypair %(name)s not found for user %(user_id)s"


class ConsolePoolNotFoundForHostType(NotFound):
    message = ("Console pool of type %(console_type)s "
               "for compute host %(compute_host)s "
               "on proxy host %(host)s not found.")


class ConsoleNotFound(NotFound):
    message = "Console %(console_id)s could not be found."


class ConsoleNotFoundForInstance(ConsoleNotFound):
    message = "Console for instance %(instance_uuid)s could not be found."


class ConsoleNotFoundInPoolForInstance(ConsoleNotFound):
    message = ("Console for instance %(instance_uuid)s "
               "in pool %(pool_id)s could not be found.")


class ImageNotFound(NotFound):
    message = "Image %(image_id)s could not be found."


# --- Not found: flavors, metadata, extra specs ----------------------------------------


class InstanceTypeNotFound(NotFound):
    message = "Instance type %(instance_type_id)s could not be found."


class InstanceTypeNotFoundByName(InstanceTypeNotFound):
    message = ("Instance type with name %(instance_type_name)s "
               "could not be found.")


class FlavorNotFound(NotFound):
    message = "Flavor %(flavor_id)s could not be found."


class FlavorAccessNotFound(NotFound):
    """Nova's template is malformed (``%(flavor_id) /`` has no conversion type), so the
    message is always the raw template text."""

    message = ("Flavor access not found for %(flavor_id) / "
               "%(project_id) combination.")


class InstanceMetadataNotFound(NotFound):
    message = ("Instance %(instance_uuid)s has no metadata with "
               "key %(metadata_key)s.")


class InstanceSystemMetadataNotFound(NotFound):
    message = ("Instance %(instance_uuid)s has no system metadata with "
               "key %(metadata_key)s.")


class InstanceTypeExtraSpecsNotFound(NotFound):
    message = ("Instance Type %(instance_type_id)s has no extra specs with "
               "key %(extra_specs_key)s.")


# --- Not found: aggregates ----------------------------------------------------------------


class AggregateNotFound(NotFound):
    message = "Aggregate %(aggregate_id)s could not be found."


class AggregateHostNotFound(NotFound):
    message = "Aggregate %(aggregate_id)s has no host %(host)s."


class AggregateMetadataNotFound(NotFound):
    message = ("Aggregate %(aggregate_id)s has no metadata with "
               "key %(metadata_key)s.")


# --- Not found: floating and fixed IPs ------------------------------------------------


class FloatingIpNotFound(NotFound):
    message = "Floating ip not found for id %(id)s."


class FloatingIpNotFoundForAddress(FloatingIpNotFound):
    message = "Floating ip not found for address %(address)s."


class FloatingIpNotFoundForHost(FloatingIpNotFound):
    message = "Floating ip not found for host %(host)s."


class NoMoreFloatingIps(FloatingIpNotFound):
    message = "Zero floating ips available."


class NoFloatingIpsDefined(NotFound):
    message = "Zero floating ips exist."


class FixedIpNotFound(NotFound):
    message = "No fixed IP associated with id %(id)s."


class FixedIpNotFoundForAddress(FixedIpNotFound):
    message = "Fixed ip not found for address %(address)s."


class FixedIpNotFoundForInstance(FixedIpNotFound):
    message = "Instance %(instance_uuid)s has zero fixed ips."


class FixedIpNotFoundForNetworkHost(FixedIpNotFound):
    message = ("Network host %(host)s has zero fixed ips "
               "in network %(network_id)s.")


class FixedIpNotFoundForNetwork(FixedIpNotFound):
    """Raised with ``address`` and ``network_id``; the template wants ``network_uuid``,
    so the message is the raw template text (as in Nova)."""

    message = ("Fixed IP address (%(address)s) does not exist in "
               "network (%(network_uuid)s).")


class NoFixedIpsDefined(NotFound):
    message = "Zero fixed ips could be found."


# --- Networks -------------------------------------------------------------------------


class NetworkNotFound(NotFound):
    message = "Network %(network_id)s could not be found."


class NetworkNotFoundForBridge(NetworkNotFound):
    message = "Network could not be found for bridge %(bridge)s"


class NetworkNotFoundForUUID(NetworkNotFound):
    message = "Network could not be found for uuid %(uuid)s"


class NetworkNotFoundForCidr(NetworkNotFound):
    message = "Network could not be found with cidr %(cidr)s."


class NetworkNotFoundForInstance(NetworkNotFound):
    message = "Network could not be found for instance %(instance_id)s."


class NetworkNotFoundForProject(NotFound):
    message = ("Either Network uuid %(network_uuid)s is not present or "
               "is not assigned to the project %(project_id)s.")


class NoNetworksFound(NotFound):
    message = "No networks defined."


class NetworkInUse(NovaException):
    message = "Network %(network_id)s is still in use."


class FixedIpAlreadyInUse(NovaException):
    """Raised with ``address`` only; the template also wants ``instance_uuid``, so the
    message is the raw template text (as in Nova)."""

    message = ("Fixed IP address %(address)s is already in use on instance "
               "%(instance_uuid)s.")


class NoMoreFixedIps(NovaException):
    message = "Zero fixed ips available."


# --- Storage: volumes, snapshots, volume types, iSCSI targets -------------------------


class VolumeNotFound(NotFound):
    message = "Volume %(volume_id)s could not be found."


class SnapshotNotFound(NotFound):
    message = "Snapshot %(snapshot_id)s could not be found."


class VolumeTypeNotFound(NotFound):
    message = "Volume type %(volume_type_id)s could not be found."


class VolumeTypeNotFoundByName(VolumeTypeNotFound):
    message = ("Volume type with name %(volume_type_name)s "
               "could not be found.")


class ISCSITargetNotFoundForVolume(NotFound):
    message = "No target id found for volume %(volume_id)s."


# --- Security groups --------------------------------------------------------------------


class SecurityGroupNotFound(NotFound):
    message = "Security group %(security_group_id)s not found."


class SecurityGroupNotFoundForProject(SecurityGroupNotFound):
    message = ("Security group %(security_group_id)s not found "
               "for project %(project_id)s.")


class SecurityGroupNotFoundForRule(SecurityGroupNotFound):
    message = "Security group with rule %(rule_id)s not found."


# --- Quotas and reservations ------------------------------------------------------------


class QuotaNotFound(NotFound):
    message = "Quota could not be found"


class QuotaResourceUnknown(QuotaNotFound):
    message = "Unknown quota resources %(unknown)s."


class ProjectQuotaNotFound(QuotaNotFound):
    message = "Quota for project %(project_id)s could not be found."


class QuotaClassNotFound(QuotaNotFound):
    message = "Quota class %(class_name)s could not be found."


class QuotaUsageNotFound(QuotaNotFound):
    message = "Quota usage for project %(project_id)s could not be found."


class ReservationNotFound(QuotaNotFound):
    message = "Quota reservation %(uuid)s could not be found."


class OverQuota(NovaException):
    message = "Quota exceeded for resources: %(overs)s"


class QuotaError(NovaException):
    message = "Quota exceeded: code=%(code)s"
    code = 413


# --- Duplicates (no code of their own: 500) --------------------------------------------


class Duplicate(NovaException):
    pass


class InstanceTypeExists(Duplicate):
    message = "Instance Type %(name)s already exists."


class FlavorAccessExists(Duplicate):
    message = ("Flavor access alreay exists for flavor %(flavor_id)s "
               "and project %(project_id)s combination.")


class AggregateNameExists(Duplicate):
    message = "Aggregate %(aggregate_name)s already exists."


class AggregateHostExists(Duplicate):
    message = "Aggregate %(aggregate_id)s already has host %(host)s."


class FloatingIpExists(Duplicate):
    message = "Floating ip %(address)s already exists."


class DuplicateVlan(Duplicate):
    message = "Detected existing vlan with id %(vlan)d"


class VolumeTypeExists(Duplicate):
    message = "Volume Type %(name)s already exists."


# --- Database snapshots (our family) ------------------------------------------------------


class DatabaseSnapshotNotFound(NotFound):
    message = "Database snapshot %(resource_id)s could not be found."


class DatabaseSnapshotExists(Duplicate):
    message = ("Database snapshot %(snapshot_id)s already exists in %(region_name)s "
               "for organization service %(organization_service_id)s.")


# </nova-exceptions>


def _all_classes() -> dict[str, type[NovaException]]:
    found: dict[str, type[NovaException]] = {}
    pending: list[type[NovaException]] = [NovaException]
    while pending:
        cls = pending.pop()
        found[cls.__name__] = cls
        pending.extend(cls.__subclasses__())
    return found


_REGISTRY: dict[str, type[NovaException]] | None = None


def lookup(name: str) -> type[NovaException] | None:
    global _REGISTRY
    if _REGISTRY is None or name not in _REGISTRY:
        _REGISTRY = _all_classes()
    return _REGISTRY.get(name)


def from_wire(error: dict[str, Any]) -> Exception:
    """Rebuild the exception described by an error reply."""
    name = str(error.get("class", "RemoteError"))
    message = str(error.get("message", ""))
    kwargs = error.get("kwargs") or {}
    cls = lookup(name)
    if cls is None:
        unknown = RemoteError(exc_type=name, value=message, traceback=error.get("traceback"))
        unknown.batch_index = _index(error.get("batch_index"))
        return unknown
    exc = cls.__new__(cls)
    Exception.__init__(exc, message)
    exc.kwargs = dict(kwargs)
    exc.kwargs.setdefault("code", cls.code)
    exc.msg = message
    if isinstance(exc, RemoteError):
        exc.exc_type = kwargs.get("exc_type")
        exc.value = kwargs.get("value")
        exc.traceback = kwargs.get("traceback")
    exc.batch_index = _index(error.get("batch_index"))
    return exc


def _index(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
