"""key_pair_* (api-compute.md §3.11), through the client and on SQLite."""

import pytest

from schemas import exceptions
from schemas.context import RequestContext, get_admin_context


async def _pair(db, ctxt, name, user_id="user1"):
    return await db.key_pair_create(ctxt, {"name": name, "user_id": user_id,
                                           "fingerprint": f"fp-{name}", "public_key": "ssh"})


async def test_create_get_list_and_count(db, user, admin):
    a = await _pair(db, user, "a")
    assert a["id"] > 0 and a["deleted"] is False and a["updated_at"] is None
    same_name = await _pair(db, user, "a")  # no uniqueness check
    b = await _pair(db, user, "b")
    await _pair(db, admin, "a", user_id="user2")
    assert await db.key_pair_get(user, "user1", "a") == a  # the first of the name
    assert [k["id"] for k in await db.key_pair_get_all_by_user(user, "user1")] == \
        [a["id"], same_name["id"], b["id"]]
    assert await db.key_pair_count_by_user(user, "user1") == 3
    assert await db.key_pair_count_by_user(admin, "user2") == 1
    assert await db.key_pair_count_by_user(admin, "nobody") == 0
    # count has no context check of its own: only the user check
    assert await db.key_pair_count_by_user(RequestContext(None, None), "user1") == 3
    with pytest.raises(exceptions.KeypairNotFound) as info:
        await db.key_pair_get(user, "user1", "zzz")
    assert info.value.kwargs == {"user_id": "user1", "name": "zzz", "code": 404}


async def test_user_check(db, user, other_user, admin):
    await _pair(db, user, "a")
    for call in (db.key_pair_get(other_user, "user1", "a"),
                 db.key_pair_get_all_by_user(other_user, "user1"),
                 db.key_pair_count_by_user(other_user, "user1"),
                 db.key_pair_destroy(other_user, "user1", "a"),
                 db.key_pair_destroy_all_by_user(other_user, "user1")):
        with pytest.raises(exceptions.NotAuthorized):
            await call
    assert await db.key_pair_count_by_user(admin, "user1") == 1
    with pytest.raises(exceptions.NotAuthorized):
        await db.key_pair_get(RequestContext(None, None), "user1", "a")


async def test_destroy_and_read_deleted(db, user, admin):
    a = await _pair(db, user, "a")
    b = await _pair(db, user, "b")
    assert await db.key_pair_destroy(user, "user1", "a") is None
    with pytest.raises(exceptions.KeypairNotFound):
        await db.key_pair_get(user, "user1", "a")
    with pytest.raises(exceptions.KeypairNotFound) as info:
        await db.key_pair_destroy(user, "user1", "a")
    assert info.value.kwargs == {"user_id": "user1", "name": "a", "code": 404}
    gone = await db.key_pair_get(get_admin_context("yes"), "user1", "a")
    assert gone["deleted"] is True and gone["deleted_at"] is not None
    assert gone["updated_at"] is not None  # an object soft delete moves it
    assert gone["id"] == a["id"]
    # listing and counting never see deleted pairs
    yes = get_admin_context("yes")
    assert [k["id"] for k in await db.key_pair_get_all_by_user(yes, "user1")] == [b["id"]]
    assert await db.key_pair_count_by_user(yes, "user1") == 1


async def test_destroy_all_by_user_restamps_deleted_ones(db, user, admin):
    a = await _pair(db, user, "a")
    await _pair(db, user, "b")
    other = await _pair(db, admin, "c", user_id="user2")
    await db.key_pair_destroy(user, "user1", "a")
    yes = get_admin_context("yes")
    first = await db.key_pair_get(yes, "user1", "a")
    assert await db.key_pair_destroy_all_by_user(user, "user1") is None
    assert await db.key_pair_get_all_by_user(user, "user1") == []
    again = await db.key_pair_get(yes, "user1", "a")
    assert again["id"] == a["id"] and again["deleted_at"] > first["deleted_at"]
    assert again["updated_at"] == first["updated_at"]  # a bulk delete keeps it
    b = await db.key_pair_get(yes, "user1", "b")
    assert b["deleted"] is True and b["updated_at"] is None
    assert await db.key_pair_get(admin, "user2", "c") == other
