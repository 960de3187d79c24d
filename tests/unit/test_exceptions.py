"""The Nova exception hierarchy in ``schemas.exceptions`` against the specs and Nova 2012.2."""

from __future__ import annotations

import builtins
import copy
import json
import pickle
import re
from pathlib import Path
from typing import Any

import pytest

from schemas import exceptions as exc
from schemas.exceptions import NovaException

# Every exception class the spec files name: class -> (direct parent, HTTP code).
EXPECTED: dict[str, tuple[str, int]] = {
    # base families
    "NotAuthorized": ("NovaException", 403),
    "AdminRequired": ("NotAuthorized", 403),
    "Invalid": ("NovaException", 400),
    "NotFound": ("NovaException", 404),
    "Duplicate": ("NovaException", 500),
    "DBError": ("NovaException", 500),
    "ConstraintNotMet": ("NovaException", 412),
    # invalid
    "InvalidInput": ("Invalid", 400),
    "InvalidUnicodeParameter": ("Invalid", 400),
    "InvalidSortKey": ("Invalid", 400),
    "InvalidUUID": ("Invalid", 400),
    "InstanceInvalidState": ("Invalid", 400),
    # generic failures
    "UnexpectedTaskStateError": ("NovaException", 500),
    "VirtualInterfaceCreateException": ("NovaException", 500),
    "TaskAlreadyRunning": ("NovaException", 500),
    "TaskNotRunning": ("NovaException", 500),
    "NoMoreNetworks": ("NovaException", 500),
    "NoMoreTargets": ("NovaException", 500),
    # compute side
    "InstanceNotFound": ("NotFound", 404),
    "MarkerNotFound": ("NotFound", 404),
    "ServiceNotFound": ("NotFound", 404),
    "HostNotFound": ("NotFound", 404),
    "ComputeHostNotFound": ("HostNotFound", 404),
    "HostBinaryNotFound": ("NotFound", 404),
    "MigrationNotFound": ("NotFound", 404),
    "MigrationNotFoundByStatus": ("MigrationNotFound", 404),
    "KeypairNotFound": ("NotFound", 404),
    "ConsolePoolNotFoundForHostType": ("NotFound", 404),
    "ConsoleNotFound": ("NotFound", 404),
    "ConsoleNotFoundForInstance": ("ConsoleNotFound", 404),
    "ConsoleNotFoundInPoolForInstance": ("ConsoleNotFound", 404),
    "ImageNotFound": ("NotFound", 404),
    "InstanceTypeExists": ("Duplicate", 500),
    "InstanceTypeNotFound": ("NotFound", 404),
    "InstanceTypeNotFoundByName": ("InstanceTypeNotFound", 404),
    "FlavorNotFound": ("NotFound", 404),
    "FlavorAccessExists": ("Duplicate", 500),
    "FlavorAccessNotFound": ("NotFound", 404),
    "InstanceMetadataNotFound": ("NotFound", 404),
    "InstanceSystemMetadataNotFound": ("NotFound", 404),
    "InstanceTypeExtraSpecsNotFound": ("NotFound", 404),
    "AggregateNameExists": ("Duplicate", 500),
    "AggregateNotFound": ("NotFound", 404),
    "AggregateMetadataNotFound": ("NotFound", 404),
    "AggregateHostNotFound": ("NotFound", 404),
    "AggregateHostExists": ("Duplicate", 500),
    # network
    "FloatingIpNotFound": ("NotFound", 404),
    "FloatingIpNotFoundForAddress": ("FloatingIpNotFound", 404),
    "FloatingIpNotFoundForHost": ("FloatingIpNotFound", 404),
    "NoMoreFloatingIps": ("FloatingIpNotFound", 404),
    "FloatingIpExists": ("Duplicate", 500),
    "NoFloatingIpsDefined": ("NotFound", 404),
    "FixedIpNotFound": ("NotFound", 404),
    "FixedIpNotFoundForAddress": ("FixedIpNotFound", 404),
    "FixedIpNotFoundForInstance": ("FixedIpNotFound", 404),
    "FixedIpNotFoundForNetworkHost": ("FixedIpNotFound", 404),
    "FixedIpNotFoundForNetwork": ("FixedIpNotFound", 404),
    "FixedIpAlreadyInUse": ("NovaException", 500),
    "NoMoreFixedIps": ("NovaException", 500),
    "NoFixedIpsDefined": ("NotFound", 404),
    "NetworkNotFound": ("NotFound", 404),
    "NetworkNotFoundForBridge": ("NetworkNotFound", 404),
    "NetworkNotFoundForUUID": ("NetworkNotFound", 404),
    "NetworkNotFoundForCidr": ("NetworkNotFound", 404),
    "NetworkNotFoundForInstance": ("NetworkNotFound", 404),
    "NetworkNotFoundForProject": ("NotFound", 404),
    "NoNetworksFound": ("NotFound", 404),
    "NetworkInUse": ("NovaException", 500),
    "DuplicateVlan": ("Duplicate", 500),
    "ISCSITargetNotFoundForVolume": ("NotFound", 404),
    # quotas
    "QuotaNotFound": ("NotFound", 404),
    "ProjectQuotaNotFound": ("QuotaNotFound", 404),
    "QuotaClassNotFound": ("QuotaNotFound", 404),
    "QuotaUsageNotFound": ("QuotaNotFound", 404),
    "ReservationNotFound": ("QuotaNotFound", 404),
    "QuotaResourceUnknown": ("QuotaNotFound", 404),
    "OverQuota": ("NovaException", 500),
    # storage and security groups
    "VolumeNotFound": ("NotFound", 404),
    "SnapshotNotFound": ("NotFound", 404),
    "VolumeTypeExists": ("Duplicate", 500),
    "VolumeTypeNotFound": ("NotFound", 404),
    "VolumeTypeNotFoundByName": ("VolumeTypeNotFound", 404),
    "SecurityGroupNotFound": ("NotFound", 404),
    "SecurityGroupNotFoundForProject": ("SecurityGroupNotFound", 404),
    "SecurityGroupNotFoundForRule": ("SecurityGroupNotFound", 404),
    # database snapshots
    "DatabaseSnapshotNotFound": ("NotFound", 404),
    "DatabaseSnapshotExists": ("Duplicate", 500),
}

# Not named by the spec, but part of the hierarchy the conductor and its callers use.
EXTRAS: dict[str, tuple[str, int]] = {
    "DBConnectionError": ("DBError", 500),
    "QuotaError": ("NovaException", 413),
    "InvalidReservationExpiration": ("Invalid", 400),
    "InvalidQuotaValue": ("Invalid", 400),
}

# What the specification says of each exception, kept in the repository (tests/data).
SPEC = json.loads((Path(__file__).resolve().parents[1] / "data" / "nova_exceptions.json")
                  .read_text(encoding="utf-8"))


def _cls(name: str) -> type[NovaException]:
    cls = getattr(exc, name, None)
    assert isinstance(cls, type), f"schemas.exceptions has no class {name}"
    assert issubclass(cls, NovaException), f"{name} is not a NovaException"
    return cls


# --- presence, parents, codes -----------------------------------------------------------


@pytest.mark.parametrize("name", sorted(EXPECTED.keys() | EXTRAS.keys()))
def test_class_parent_and_code(name: str) -> None:
    parent, code = {**EXPECTED, **EXTRAS}[name]
    cls = _cls(name)
    assert cls.__bases__ == (_cls(parent),)
    assert cls.code == code
    assert cls().kwargs["code"] == code


def test_compute_errors_table_section_1_4() -> None:
    rows = SPEC["compute_errors"]
    assert len(rows) > 30
    for row in rows:
        cls = _cls(row["name"])
        assert cls.__bases__[0].__name__ == row["parent"], row["name"]
        for code in row["codes"]:
            assert cls.code == code, row["name"]
        assert row["name"] in EXPECTED


def test_network_quota_storage_table_section_6() -> None:
    rows = SPEC["network_quota_storage_errors"]
    assert len(rows) > 40
    for row in rows:
        cls = _cls(row["name"])
        assert cls.__bases__[0].__name__ == row["parent"], row["name"]
        assert cls.code == row["code"], row["name"]
        assert row["name"] in EXPECTED


def test_db_api_module_exceptions_section_2() -> None:
    names = set(SPEC["db_api_module_errors"])
    assert names == {"NoMoreNetworks", "NoMoreTargets"}
    for name in names:
        cls = _cls(name)
        assert cls.__bases__ == (NovaException,)
        err = cls()
        assert str(err) == "An unknown exception occurred."
        assert err.kwargs == {"code": 500}


def test_every_exception_named_anywhere_in_the_spec_exists() -> None:
    named = set(SPEC["named_in_spec"])
    named -= {n for n in named if hasattr(builtins, n)}  # NotImplementedError, TypeError, ...
    named -= {"RemoteError", "NovaException"}  # RPC machinery; the base itself
    assert len(named) > 80
    missing = sorted(n for n in named if not isinstance(getattr(exc, n, None), type))
    assert not missing, f"named in the spec but missing: {missing}"
    for name in named:
        _cls(name)
    unlisted = sorted(named - EXPECTED.keys())
    assert not unlisted, f"add to EXPECTED: {unlisted}"
    unnamed = sorted(EXPECTED.keys() - named)
    assert not unnamed, f"in EXPECTED but not named by the spec: {unnamed}"


# --- message formatting -------------------------------------------------------------------


def test_instance_not_found_formats_its_template() -> None:
    err = exc.InstanceNotFound(instance_id=5)
    assert str(err) == "Instance 5 could not be found."
    assert err.msg == "Instance 5 could not be found."
    assert err.kwargs == {"instance_id": 5, "code": 404}
    assert isinstance(err, exc.NotFound)


@pytest.mark.parametrize(("name", "kwargs", "message"), [
    ("NotAuthorized", {}, "Not authorized."),
    ("AdminRequired", {}, "User does not have admin privileges"),
    ("InvalidInput", {"reason": "bad"}, "Invalid input received: bad"),
    ("InvalidUUID", {"uuid": "x"}, "Expected a uuid but received x."),
    ("ConstraintNotMet", {}, "Constraint not met."),
    ("ComputeHostNotFound", {"host": "h1"}, "Compute host h1 could not be found."),
    ("HostBinaryNotFound", {"host": "h", "binary": "b"}, "Could not find binary b on host h."),
    ("KeypairNotFound", {"user_id": "u", "name": "k"}, "Keypair k not found for user u"),
    ("UnexpectedTaskStateError", {"actual": "a", "expected": "e"},
     "unexpected task state: expecting e but the actual state is a"),
    ("InstanceInvalidState",
     {"attr": "vm_state", "instance_uuid": "u", "state": "error", "method": "m"},
     "Instance u in vm_state error. Cannot m while the instance is in this state."),
    ("DuplicateVlan", {"vlan": 7}, "Detected existing vlan with id 7"),
    ("QuotaResourceUnknown", {"unknown": ["a", "b"]},
     "Unknown quota resources ['a', 'b']."),
    ("OverQuota", {"overs": ["cores"], "quotas": {}, "usages": {}},
     "Quota exceeded for resources: ['cores']"),
    ("QuotaError", {}, "Quota exceeded: code=413"),
    ("DBConnectionError", {"reason": "refused"}, "Database connection lost: refused"),
    ("DatabaseSnapshotNotFound", {"resource_id": "dbsnap-1"},
     "Database snapshot dbsnap-1 could not be found."),
    ("DatabaseSnapshotExists",
     {"organization_service_id": 3, "region_name": "r", "snapshot_id": "s"},
     "Database snapshot s already exists in r for organization service 3."),
])
def test_message_templates(name: str, kwargs: dict[str, Any], message: str) -> None:
    err = _cls(name)(**kwargs)
    assert str(err) == message
    assert err.kwargs == {**kwargs, "code": _cls(name).code}


@pytest.mark.parametrize(("name", "kwargs"), [
    ("FlavorAccessNotFound", {"flavor_id": "1", "project_id": "p"}),  # malformed template
    ("FixedIpNotFoundForNetwork", {"address": "10.0.0.2", "network_id": 1}),
    ("FixedIpAlreadyInUse", {"address": "10.0.0.2"}),
    ("InstanceNotFound", {}),
    ("DuplicateVlan", {"vlan": "not-an-int"}),
])
def test_fallback_to_raw_template(name: str, kwargs: dict[str, Any]) -> None:
    cls = _cls(name)
    err = cls(**kwargs)
    assert str(err) == cls.message
    assert err.kwargs == {**kwargs, "code": cls.code}


def test_flavor_access_not_found_template_is_malformed() -> None:
    with pytest.raises(ValueError):
        _ = exc.FlavorAccessNotFound.message % {"flavor_id": 1, "project_id": 2}


def _all_nova_classes() -> list[type[NovaException]]:
    return sorted(exc._all_classes().values(), key=lambda c: c.__name__)


@pytest.mark.parametrize("cls", _all_nova_classes(), ids=lambda c: c.__name__)
def test_every_template_formats_with_its_own_keys(cls: type[NovaException]) -> None:
    keys = re.findall(r"%\((\w+)\)", cls.message)
    err = cls(**{k: 1 for k in keys if k != "code"})
    if cls is exc.FlavorAccessNotFound:
        assert str(err) == cls.message
    else:
        assert "%(" not in str(err), f"{cls.__name__}: {err}"


def test_explicit_message_wins_and_code_is_kept() -> None:
    err = exc.NotFound("sm backend conf not found")
    assert str(err) == "sm backend conf not found"
    assert err.kwargs == {"code": 404}
    assert exc.Duplicate("dup").kwargs == {"code": 500}
    assert exc.InstanceNotFound(instance_id=1, code=410).kwargs["code"] == 410


def test_message_only_raises() -> None:
    uuid_err = exc.InvalidUUID("abc")
    assert str(uuid_err) == "abc"
    assert uuid_err.kwargs == {"code": 400}
    marker = exc.MarkerNotFound("m1")
    assert str(marker) == "m1"
    assert marker.kwargs == {"code": 404}


def test_db_error_wraps_inner_exception() -> None:
    inner = ValueError("UNIQUE constraint failed: volume_types.name")
    err = exc.DBError(inner)
    assert str(err) == "UNIQUE constraint failed: volume_types.name"
    assert err.inner_exception is inner
    assert err.kwargs == {"code": 500}
    assert str(exc.DBError()) == NovaException.message
    assert exc.DBError().inner_exception is None
    lost = exc.DBConnectionError(reason="server closed the connection")
    assert isinstance(lost, exc.DBError)
    assert str(lost) == "Database connection lost: server closed the connection"


# --- wire round trip ------------------------------------------------------------------------


SAMPLES = [
    exc.InstanceNotFound(instance_id="9f1a"),
    exc.InvalidUUID("abc"),
    exc.InvalidUUID(uuid="abc"),
    exc.MarkerNotFound("m1"),
    exc.DBError(RuntimeError("disk I/O error")),
    exc.DBConnectionError(reason="refused"),
    exc.AdminRequired(),
    exc.NotAuthorized(),
    exc.ConstraintNotMet(),
    exc.FlavorAccessNotFound(flavor_id="1", project_id="p"),
    exc.FixedIpAlreadyInUse(address="10.0.0.2"),
    exc.SecurityGroupNotFoundForProject(project_id="p", security_group_id="default"),
    exc.QuotaResourceUnknown(unknown=["bogus"]),
    exc.OverQuota(overs=["cores"], quotas={"cores": 1}, usages={"cores": {"in_use": 1}}),
    exc.NoMoreNetworks(),
    exc.NotFound("free text"),
    exc.QuotaError(code="AddressLimitExceeded"),
    exc.DatabaseSnapshotExists(organization_service_id=1, region_name="r", snapshot_id="s"),
]


def _same(a: Exception, b: Exception) -> None:
    assert type(a) is type(b)
    assert str(a) == str(b)
    assert a.msg == b.msg  # type: ignore[attr-defined]
    assert a.kwargs == b.kwargs  # type: ignore[attr-defined]


@pytest.mark.parametrize("err", SAMPLES, ids=lambda e: type(e).__name__)
def test_wire_round_trip(err: NovaException) -> None:
    wire = err.to_wire()
    assert wire["class"] == type(err).__name__
    assert wire["message"] == str(err)
    if err.kwargs["code"] == type(err).code:
        assert "code" not in wire["kwargs"]
    _same(err, exc.from_wire(wire))


def test_wire_shapes_of_message_only_errors() -> None:
    assert exc.InvalidUUID("abc").to_wire() == {
        "class": "InvalidUUID", "message": "abc", "kwargs": {}}
    assert exc.MarkerNotFound("m1").to_wire() == {
        "class": "MarkerNotFound", "message": "m1", "kwargs": {}}
    rebuilt = exc.from_wire({"class": "InvalidUUID", "message": "abc", "kwargs": {}})
    assert isinstance(rebuilt, exc.Invalid)
    assert rebuilt.kwargs == {"code": 400}


def test_db_error_rebuilt_without_init() -> None:
    rebuilt = exc.from_wire(exc.DBError(RuntimeError("boom")).to_wire())
    assert isinstance(rebuilt, exc.DBError)
    assert str(rebuilt) == "boom"
    assert rebuilt.inner_exception is None
    assert rebuilt.kwargs == {"code": 500}


def test_unknown_class_becomes_remote_error() -> None:
    rebuilt = exc.from_wire({"class": "IntegrityError", "message": "duplicate key",
                             "kwargs": {"x": 1}, "traceback": "tb"})
    assert type(rebuilt) is exc.RemoteError
    assert rebuilt.exc_type == "IntegrityError"
    assert rebuilt.value == "duplicate key"
    assert rebuilt.traceback == "tb"
    assert "IntegrityError" in str(rebuilt)
    again = exc.from_wire(rebuilt.to_wire())
    assert type(again) is exc.RemoteError
    assert again.exc_type == "IntegrityError"
    assert again.value == "duplicate key"


def test_every_class_is_found_by_name() -> None:
    for name in EXPECTED.keys() | EXTRAS.keys():
        assert exc.lookup(name) is getattr(exc, name)


# --- pickling ---------------------------------------------------------------------------------


@pytest.mark.parametrize("err", SAMPLES, ids=lambda e: type(e).__name__)
def test_pickle_round_trip(err: NovaException) -> None:
    _same(err, pickle.loads(pickle.dumps(err)))
    _same(err, copy.deepcopy(err))


def test_pickle_remote_error() -> None:
    err = exc.RemoteError(exc_type="KeyError", value="'x'", traceback=None)
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is exc.RemoteError
    assert (back.exc_type, back.value, str(back)) == ("KeyError", "'x'", str(err))


def test_caught_by_family() -> None:
    with pytest.raises(exc.NotFound):
        raise exc.from_wire(exc.ComputeHostNotFound(host="h").to_wire())
    with pytest.raises(exc.HostNotFound):
        raise pickle.loads(pickle.dumps(exc.ComputeHostNotFound(host="h")))
    with pytest.raises(exc.NotAuthorized):
        raise exc.from_wire(exc.AdminRequired().to_wire())
