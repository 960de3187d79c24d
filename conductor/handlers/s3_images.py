"""S3 images (api-compute.md §3.13): the row's ``id`` is the EC2 image number.

No context check, and the getters see deleted rows whatever the context says.
"""

from __future__ import annotations

from typing import Any

from conductor.db.models import S3Image
from conductor.db.session import Row, Session
from conductor.handlers import api, plain
from schemas import exceptions
from schemas.context import RequestContext

s3_image_get = plain.get("s3_image_get", S3Image, "id", exceptions.ImageNotFound,
                         read_deleted="yes")
s3_image_get_by_uuid = plain.get(
    "s3_image_get_by_uuid", S3Image, "uuid",
    lambda image_uuid: exceptions.ImageNotFound(image_id=image_uuid), read_deleted="yes")


@api
async def s3_image_create(session: Session, context: RequestContext, image_uuid: Any) -> Row:
    # "Any failure -> DBError" (§3.13): a NULL goes to the database, which refuses it as a
    # constraint violation; a value the column cannot hold is InvalidInput, as everywhere.
    cols = {"uuid": None} if image_uuid is None else session.check(S3Image,
                                                                   {"uuid": image_uuid})
    return await session.insert(S3Image, cols, checked=True, echo={"uuid": image_uuid})
