"""instance_fault_* through the client and on SQLite."""

import uuid

import pytest

from schemas import exceptions
from schemas.context import RequestContext

COLUMNS = {"id", "instance_uuid", "code", "message", "details", "created_at", "updated_at",
           "deleted_at", "deleted"}


def _uuid():
    return str(uuid.uuid4())


async def _fault(db, context, instance_uuid, code=404, message="oops", **values):
    return await db.instance_fault_create(context, {"instance_uuid": instance_uuid,
                                                    "code": code, "message": message,
                                                    "details": "trace", **values})


async def test_create_accepts_unknown_instances_and_returns_all_columns(db, admin):
    u = _uuid()
    fault = await _fault(db, admin, u)
    assert set(fault) == COLUMNS
    assert fault["instance_uuid"] == u and fault["code"] == 404
    assert fault["created_at"] is not None and fault["updated_at"] is None
    assert fault["deleted"] is False and fault["deleted_at"] is None


async def test_get_returns_newest_first_equal_to_what_was_created(db, admin):
    u1, u2 = _uuid(), _uuid()
    first1 = await _fault(db, admin, u1, message="first")
    first2 = await _fault(db, admin, u2, message="first", code=500)
    second1 = await _fault(db, admin, u1, message="second")
    second2 = await _fault(db, admin, u2, message="second", code=500)
    got = await db.instance_fault_get_by_instance_uuids(admin, [u1, u2])
    assert got == {u1: [second1, first1], u2: [second2, first2]}
    assert got[u1][0]["code"] == 404


async def test_instances_without_faults_map_to_empty_lists(db, admin):
    u1, u2 = _uuid(), _uuid()
    await _fault(db, admin, _uuid())
    assert await db.instance_fault_get_by_instance_uuids(admin, [u1, u2]) == {u1: [],
                                                                              u2: []}
    assert await db.instance_fault_get_by_instance_uuids(admin, []) == {}


async def test_deleted_faults_are_never_returned(db, admin):
    u = _uuid()
    await _fault(db, admin, u, deleted=True)
    live = await _fault(db, admin, u)
    for context in (admin, RequestContext("u", "p", read_deleted="yes")):
        assert await db.instance_fault_get_by_instance_uuids(context, [u]) == {u: [live]}


async def test_no_context_check_and_bad_input(db):
    anonymous = RequestContext(None, None)
    u = _uuid()
    fault = await _fault(db, anonymous, u)
    assert await db.instance_fault_get_by_instance_uuids(anonymous, [u]) == {u: [fault]}
    with pytest.raises(exceptions.DBError):  # code is NOT NULL
        await db.instance_fault_create(anonymous, {"instance_uuid": u})
    with pytest.raises(exceptions.InvalidInput, match="instance_faults.code"):
        await db.instance_fault_create(anonymous, {"instance_uuid": u, "code": "bad"})
    with pytest.raises(exceptions.InvalidInput):
        await db.instance_fault_get_by_instance_uuids(anonymous, None)
