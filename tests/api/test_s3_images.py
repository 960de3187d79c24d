"""s3_image_* (api-compute.md §3.13), through the client and on SQLite."""

import pytest
from sqlalchemy import update

from conductor.db.models import S3Image
from schemas import exceptions
from schemas.context import RequestContext

IMAGES = S3Image.__table__


@pytest.fixture
def raw(_api_backend, db):
    """The engine behind ``db`` (already emptied): no API function deletes s3 images."""
    return _api_backend[0]


async def test_create_and_get_deleted_included(db, raw):
    anonymous = RequestContext(None, None)  # no context check at all
    first = await db.s3_image_create(anonymous, "img-uuid")
    second = await db.s3_image_create(anonymous, "img-uuid")  # no duplicate check
    assert first["uuid"] == "img-uuid" and second["id"] > first["id"] > 0
    assert first["deleted"] is False and first["created_at"] is not None
    async with raw.begin() as conn:
        await conn.execute(update(IMAGES).where(IMAGES.c.id == first["id"])
                           .values(deleted=True))
    got = await db.s3_image_get(anonymous, first["id"])
    assert got["deleted"] is True and got["uuid"] == "img-uuid"
    assert (await db.s3_image_get(anonymous, str(second["id"])))["id"] == second["id"]
    assert (await db.s3_image_get_by_uuid(anonymous, "img-uuid"))["id"] == first["id"]
    for call, arg in ((db.s3_image_get, 999), (db.s3_image_get, "fake"),
                      (db.s3_image_get, 2**40), (db.s3_image_get_by_uuid, "fake"),
                      (db.s3_image_get_by_uuid, None)):
        with pytest.raises(exceptions.ImageNotFound) as info:
            await call(anonymous, arg)
        assert info.value.kwargs == {"image_id": arg, "code": 404}


async def test_create_failures(db, admin):
    # a NULL is refused by the database: DBError (§3.13); a value the column cannot hold
    # is refused before it gets there
    with pytest.raises(exceptions.DBError):
        await db.s3_image_create(admin, None)
    with pytest.raises(exceptions.InvalidInput, match="s3_images.uuid"):
        await db.s3_image_create(admin, "x" * 37)
    with pytest.raises(exceptions.ImageNotFound):
        await db.s3_image_get(admin, 1)
