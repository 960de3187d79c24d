"""certificate_* (api-compute.md §3.4), through the client and on SQLite."""

import pytest
from sqlalchemy import update

from conductor.db.models import Certificate
from schemas import exceptions
from schemas.context import RequestContext, get_admin_context

CERTS = Certificate.__table__


@pytest.fixture
def raw(_api_backend, db):
    """The engine behind ``db`` (already emptied): no API function deletes certificates."""
    return _api_backend[0]


async def test_create_and_the_three_live_listings(db, admin, raw):
    made = await db.certificate_create(admin, {"user_id": "u1", "project_id": "p1",
                                               "file_name": "a.pem", "nonsense": 1})
    assert made["id"] > 0 and made["deleted"] is False and made["created_at"] is not None
    # every key of values is echoed, stored or not (api-compute.md §1.5)
    assert made["updated_at"] is None and made["nonsense"] == 1
    b = await db.certificate_create(admin, {"user_id": "u1", "project_id": "p2"})
    c = await db.certificate_create(admin, {"user_id": "u2", "project_id": "p1"})
    d = await db.certificate_create(admin, {"user_id": "u1", "project_id": "p1"})
    gone = await db.certificate_create(admin, {"user_id": "u1", "project_id": "p1"})
    async with raw.begin() as conn:
        await conn.execute(update(CERTS).where(CERTS.c.id == gone["id"]).values(deleted=True))

    def ids(rows):
        return [r["id"] for r in rows]

    assert ids(await db.certificate_get_all_by_project(admin, "p1")) == \
        [made["id"], c["id"], d["id"]]
    assert ids(await db.certificate_get_all_by_user(admin, "u1")) == \
        [made["id"], b["id"], d["id"]]
    # never deleted rows, whatever the context's read_deleted says
    yes = get_admin_context("yes")
    assert ids(await db.certificate_get_all_by_user_and_project(yes, "u1", "p1")) == \
        [made["id"], d["id"]]
    assert await db.certificate_get_all_by_project(admin, "nobody") == []
    got = (await db.certificate_get_all_by_user_and_project(admin, "u1", "p1"))[0]
    assert got == {k: v for k, v in made.items() if k != "nonsense"}  # reads show columns
    assert await db.certificate_get_all_by_project(admin, 12) == []


async def test_admin_only(db, user):
    for call in (db.certificate_create(user, {"user_id": "user1"}),
                 db.certificate_get_all_by_project(user, "project1"),
                 db.certificate_get_all_by_user(user, "user1"),
                 db.certificate_get_all_by_user_and_project(user, "user1", "project1"),
                 db.certificate_get_all_by_user(RequestContext(None, None), "user1")):
        with pytest.raises(exceptions.AdminRequired):
            await call
