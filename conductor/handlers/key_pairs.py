"""Key pairs (api-compute.md §3.11).

Every function but ``key_pair_create`` takes a ``user_id`` and applies the user check: a
user context may only name itself.  Names are not unique per user (the compute API checks
before creating), so "the" key pair of a name is the first one.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func

from conductor.db.models import KeyPair
from conductor.db.query import authorize_user, equals
from conductor.db.session import Row, Session
from conductor.handlers import api, plain
from schemas import exceptions
from schemas.context import RequestContext

key_pairs = KeyPair.__table__


async def _get(session: Session, context: RequestContext, user_id: Any, name: Any) -> Row:
    return await session.first(
        context, KeyPair, equals(key_pairs.c.user_id, user_id), equals(key_pairs.c.name, name),
        missing=lambda: exceptions.KeypairNotFound(user_id=user_id, name=name))


key_pair_create = plain.create("key_pair_create", KeyPair)



@api
async def key_pair_destroy(session: Session, context: RequestContext, user_id: Any,
                           name: Any) -> None:
    authorize_user(context, user_id)
    await session.soft_delete(KeyPair, await _get(session, context, user_id, name))


@api
async def key_pair_destroy_all_by_user(session: Session, context: RequestContext,
                                       user_id: Any) -> None:
    authorize_user(context, user_id)
    # Already deleted rows match too and get a new deleted_at (§3.11).
    await session.soft_delete_where(KeyPair, equals(key_pairs.c.user_id, user_id))


@api
async def key_pair_get(session: Session, context: RequestContext, user_id: Any,
                       name: Any) -> Row:
    authorize_user(context, user_id)
    return await _get(session, context, user_id, name)


@api
async def key_pair_get_all_by_user(session: Session, context: RequestContext,
                                   user_id: Any) -> list[Row]:
    authorize_user(context, user_id)
    return await session.all(context, KeyPair, equals(key_pairs.c.user_id, user_id),
                             read_deleted="no")


@api
async def key_pair_count_by_user(session: Session, context: RequestContext,
                                 user_id: Any) -> int:
    authorize_user(context, user_id)
    count = await session.scalar(session.query(context, KeyPair, read_deleted="no")
                                 .where(equals(key_pairs.c.user_id, user_id))
                                 .with_only_columns(func.count()))
    return int(count or 0)
