"""reservation_*, quota_reserve, commit, rollback and expire (api-network-quota-storage.md
§4.1, §4.3-§4.6) through the client and on SQLite; the concurrency tests run on
PostgreSQL only (SQLite runs one call at a time)."""

import asyncio
import datetime as dt
import uuid

import pytest
from sqlalchemy import insert, select, update

from conductor.db.base import utcnow
from conductor.db.models import FloatingIp, QuotaUsage, Reservation, Volume
from schemas import exceptions
from schemas.context import RequestContext, get_admin_context
from tests.conftest import _wipe

FUTURE = dt.datetime(2100, 1, 1)
LIMITS = {"instances": 5, "cores": 10, "ram": 10240}
DELTAS = {"instances": 2, "cores": 4, "ram": 2048}
GROUP_I = ("instances", "cores", "ram")


@pytest.fixture
def raw(_api_backend):
    """The engine behind ``db``: sets timestamps and reads rows no API reader returns."""
    return _api_backend[0]


async def _rows(engine, model, **where):
    t = model.__table__
    async with engine.connect() as conn:
        stmt = select(t).where(*(t.c[k] == v for k, v in where.items())).order_by(t.c.id)
        return [dict(r) for r in (await conn.execute(stmt)).mappings()]


async def _usages(db, project="project1"):
    """resource -> usage row, for the project's live usages."""
    out = {}
    for resource in ("instances", "cores", "ram", "volumes", "gigabytes", "floating_ips",
                     "security_groups"):
        try:
            out[resource] = await db.quota_usage_get(get_admin_context(), project, resource)
        except exceptions.QuotaUsageNotFound:
            pass
    return out


async def _seed(db, admin, in_use, until_refresh=None, project="project1"):
    return {res: await db.quota_usage_create(admin, project, res, n, 0, until_refresh)
            for res, n in zip(GROUP_I, in_use, strict=True)}


async def _reserve(db, ctx, deltas=DELTAS, limits=LIMITS, until_refresh=0, max_age=0,
                   expire=FUTURE):
    return await db.quota_reserve(ctx, list(limits), limits, deltas, expire, until_refresh,
                                  max_age)


# --- plain reservation accessors ----------------------------------------------------------

async def test_reservation_create_get_get_all_destroy(db_config, db, admin, user, monkeypatch):
    # reads across projects as 2012.2 answers them (strict isolation: test_isolation.py)
    monkeypatch.setattr(db_config, "isolation", "nova")
    usage = await db.quota_usage_create(admin, "project1", "instances", 0, 3, None)
    r = await db.reservation_create(admin, "uuid-1", usage, "project1", "instances", 3, FUTURE)
    assert (r["uuid"], r["usage_id"], r["delta"], r["expire"]) == ("uuid-1", usage["id"], 3,
                                                                    FUTURE)
    assert await db.reservation_get(user, "uuid-1") == r
    await db.reservation_create(admin, "uuid-2", usage, "project1", "instances", -1, FUTURE)
    cores = await db.quota_usage_create(admin, "project1", "cores", 0, 0, None)
    await db.reservation_create(admin, "uuid-3", cores, "project1", "cores", 2, FUTURE)
    other = await db.quota_usage_create(admin, "project2", "cores", 0, 0, None)
    await db.reservation_create(admin, "uuid-4", other, "project2", "cores", 1, FUTURE)
    assert (await db.reservation_get(user, "uuid-4"))["project_id"] == "project2"
    assert await db.reservation_get_all_by_project(user, "project1") == {
        "project_id": "project1", "instances": {"uuid-1": 3, "uuid-2": -1},
        "cores": {"uuid-3": 2}}
    with pytest.raises(exceptions.NotAuthorized):
        await db.reservation_get_all_by_project(user, "project2")

    assert await db.reservation_destroy(admin, "uuid-1") is None
    # the usage's reserved count is not adjusted
    assert (await db.quota_usage_get(admin, "project1", "instances"))["reserved"] == 3
    for call in (db.reservation_get(admin, "uuid-1"), db.reservation_destroy(admin, "uuid-1"),
                 db.reservation_get(admin, "nope")):
        with pytest.raises(exceptions.ReservationNotFound) as info:
            await call
        assert info.value.kwargs["code"] == 404
    with pytest.raises(exceptions.ReservationNotFound) as info:
        await db.reservation_get(admin, "uuid-1")
    assert info.value.kwargs == {"uuid": "uuid-1", "code": 404}
    for call in (db.reservation_create(user, "u", usage, "project1", "instances", 1, FUTURE),
                 db.reservation_destroy(user, "uuid-2"), db.reservation_expire(user)):
        with pytest.raises(exceptions.AdminRequired):
            await call
    with pytest.raises(exceptions.InvalidInput):
        await db.reservation_create(admin, "u", {"no": "id"}, "p", "instances", 1, FUTURE)


# --- quota_reserve: the TESTED cases of §4.3 ----------------------------------------------

async def test_reserve_without_usage_rows_creates_and_refreshes_them(db, user, raw):
    result = await _reserve(db, user)
    assert isinstance(result, list) and len(result) == 3
    usages = await _usages(db)
    assert set(usages) == set(GROUP_I)
    for res in GROUP_I:
        u = usages[res]
        assert (u["in_use"], u["reserved"], u["until_refresh"]) == (0, DELTAS[res], None)
    # one reservation per resource, in the order of deltas, with the usage's id
    rows = await _rows(raw, Reservation, deleted=False)
    assert [r["uuid"] for r in rows] == result
    assert [(r["resource"], r["delta"], r["usage_id"], r["project_id"], r["expire"])
            for r in rows] == [(res, DELTAS[res], usages[res]["id"], "project1", FUTURE)
                               for res in GROUP_I]
    assert await db.reservation_get_all_by_project(user, "project1") == {
        "project_id": "project1", **{r["resource"]: {r["uuid"]: r["delta"]} for r in rows}}


async def test_reserve_refreshes_negative_in_use_and_finished_countdowns(db, admin, user):
    await db.instance_create(user, {"project_id": "project1", "vcpus": 3, "memory_mb": 512})
    await _seed(db, admin, (-1, -1, -1), until_refresh=1)
    await _reserve(db, user, until_refresh=5)
    usages = await _usages(db)
    assert set(usages) == set(GROUP_I)  # no usage row created
    assert {r: (u["in_use"], u["reserved"], u["until_refresh"]) for r, u in usages.items()} \
        == {"instances": (1, 2, 5), "cores": (3, 4, 5), "ram": (512, 2048, 5)}

    # countdown: 5 -> 4, no refresh (the new instance is not counted)
    await db.instance_create(user, {"project_id": "project1", "vcpus": 1, "memory_mb": 1})
    await _reserve(db, user, deltas={"instances": 1}, limits={"instances": 10},
                   until_refresh=5)
    usages = await _usages(db)
    assert (usages["instances"]["in_use"], usages["instances"]["until_refresh"]) == (1, 4)
    assert usages["cores"]["until_refresh"] == 5

    # countdown reaching zero refreshes the whole group and resets it
    await db.quota_usage_update(admin, "project1", "instances", 1, 3, 1)
    await _reserve(db, user, deltas={"instances": 1}, limits={"instances": 10},
                   until_refresh=5)
    usages = await _usages(db)
    assert {r: (u["in_use"], u["until_refresh"]) for r, u in usages.items()} == {
        "instances": (2, 5), "cores": (4, 5), "ram": (513, 5)}
    assert usages["instances"]["reserved"] == 4


async def test_reserve_refreshes_by_age_only_when_old_enough(db, admin, user, raw):
    await db.instance_create(user, {"project_id": "project1", "vcpus": 2, "memory_mb": 64})
    await _seed(db, admin, (0, 0, 0))
    t = QuotaUsage.__table__

    async def age(seconds):
        async with raw.begin() as conn:
            await conn.execute(update(t).where(t.c.project_id == "project1")
                               .values(updated_at=utcnow() - dt.timedelta(seconds=seconds)))

    await age(3000)  # younger than max_age: no refresh
    await _reserve(db, user, deltas={"instances": 1}, max_age=3600)
    assert (await _usages(db))["instances"]["in_use"] == 0
    await age(3600)
    await _reserve(db, user, deltas={"instances": 1}, max_age=3600)
    usages = await _usages(db)
    assert {r: (u["in_use"], u["until_refresh"]) for r, u in usages.items()} == {
        "instances": (1, None), "cores": (2, None), "ram": (64, None)}
    assert usages["instances"]["reserved"] == 2
    # a row never updated counts its age from created_at
    await db.quota_usage_create(admin, "project2", "instances", 7, 0, None)
    async with raw.begin() as conn:
        await conn.execute(update(t).where(t.c.project_id == "project2")
                           .values(created_at=utcnow() - dt.timedelta(hours=2),
                                   updated_at=None))
    other = RequestContext("user2", "project2")
    await _reserve(db, other, deltas={"instances": 1}, max_age=3600)
    assert (await _usages(db, "project2"))["instances"]["in_use"] == 0


async def test_reserve_without_countdown_or_max_age_does_not_refresh(db, admin, user):
    await db.instance_create(user, {"project_id": "project1", "vcpus": 2})
    await _seed(db, admin, (3, 3, 3))
    await _reserve(db, user)
    usages = await _usages(db)
    assert {r: (u["in_use"], u["reserved"], u["until_refresh"]) for r, u in usages.items()} \
        == {"instances": (3, 2, None), "cores": (3, 4, None), "ram": (3, 2048, None)}


async def test_negative_deltas_are_allowed_below_zero_and_above_quota(db, admin, user, raw):
    await _seed(db, admin, (1, 1, 1))
    deltas = {"instances": -2, "cores": -4, "ram": -2048}
    first = await _reserve(db, user, deltas=deltas)
    await db.quota_usage_update(admin, "project1", "instances", 10, 0, None)
    await db.quota_usage_update(admin, "project1", "cores", 20, 0, None)
    await db.quota_usage_update(admin, "project1", "ram", 20480, 0, None)
    second = await _reserve(db, user, deltas=deltas)
    usages = await _usages(db)
    assert all(u["reserved"] == 0 for u in usages.values())
    assert [u["in_use"] for u in usages.values()] == [10, 20, 20480]  # no refresh
    rows = await _rows(raw, Reservation)
    assert [r["uuid"] for r in rows] == first + second
    assert [r["delta"] for r in rows] == list(deltas.values()) * 2


async def test_over_quota_changes_nothing_and_reports_every_usage(db, admin, user, raw):
    seeded = await _seed(db, admin, (4, 8, 10240))
    await db.quota_usage_create(admin, "project1", "volumes", 1, 1, None)
    with pytest.raises(exceptions.OverQuota) as info:
        await _reserve(db, user)
    assert info.value.kwargs == {
        "overs": ["cores", "instances", "ram"], "quotas": LIMITS, "code": 500,
        "usages": {"instances": {"in_use": 4, "reserved": 0},
                   "cores": {"in_use": 8, "reserved": 0},
                   "ram": {"in_use": 10240, "reserved": 0},
                   "volumes": {"in_use": 1, "reserved": 1}}}
    assert await _rows(raw, Reservation) == []
    usages = await _usages(db)
    assert set(usages) == {*GROUP_I, "volumes"}
    assert all(usages[r] == seeded[r] for r in GROUP_I)

    # only the resources over their limit are named; a zero delta above the limit is
    # over, an unlimited one (None or negative) never is
    await db.quota_usage_update(admin, "project1", "instances", 6, 0, None)
    with pytest.raises(exceptions.OverQuota) as info:
        await _reserve(db, user, deltas={"instances": 0, "cores": 2, "ram": 99999},
                       limits={"instances": 5, "cores": 10, "ram": None})
    assert info.value.kwargs["overs"] == ["instances"]
    got = await _reserve(db, user, deltas={"instances": 0, "cores": 2, "ram": 99999},
                         limits={"instances": -1, "cores": 10, "ram": -1})
    assert len(got) == 3


async def test_a_refresh_covers_the_whole_group_and_only_it(db, admin, user):
    await db.instance_create(user, {"project_id": "project1", "vcpus": 4, "memory_mb": 8})
    await db.quota_usage_create(admin, "project1", "cores", 1, 0, None)
    # cores has a row and no rule applies: not refreshed; security_groups has none: its row
    # is made and refreshed (instance_create made the project's default group)
    await _reserve(db, user, deltas={"cores": 1, "security_groups": 1},
                   limits={"cores": 4, "security_groups": 10})
    usages = await _usages(db)
    assert {r: (u["in_use"], u["reserved"]) for r, u in usages.items()} == {
        "cores": (1, 1), "security_groups": (1, 1)}
    # a missing instances row refreshes group I: cores recomputed, ram's row made
    await _reserve(db, user, deltas={"instances": 1}, limits={"instances": 10})
    usages = await _usages(db)
    assert {r: (u["in_use"], u["reserved"]) for r, u in usages.items()} == {
        "instances": (1, 1), "cores": (4, 1), "ram": (8, 0), "security_groups": (1, 1)}
    with pytest.raises(exceptions.OverQuota) as info:
        await _reserve(db, user, deltas={"cores": 1}, limits={"cores": 5})
    assert info.value.kwargs["usages"] == {
        r: {"in_use": u["in_use"], "reserved": u["reserved"]} for r, u in usages.items()}


async def test_end_to_end_usage_is_counted_from_real_rows(db, admin, user, raw):
    async def over(deltas, limits, ctx=user):
        with pytest.raises(exceptions.OverQuota) as info:
            await _reserve(db, ctx, deltas=deltas, limits=limits)
        return info.value.kwargs["overs"]

    for _ in range(2):
        await db.instance_create(user, {"project_id": "project1", "vcpus": 2})
    assert await over({"instances": 1}, {"instances": 2}) == ["instances"]
    async with raw.begin() as conn:
        # (executemany takes its columns from the first row: every row names them all)
        await conn.execute(insert(Volume.__table__), [
            {"id": str(uuid.uuid4()), "project_id": "project1", "size": size,
             "deleted": deleted} for size, deleted in ((10, False), (10, False), (99, True))])
        await conn.execute(insert(FloatingIp.__table__), [
            {"address": address, "project_id": project, "auto_assigned": auto}
            for address, project, auto in (("10.0.0.1", "project2", False),
                                           ("10.0.0.2", "project2", True),
                                           ("10.0.0.3", None, False))])
    assert await over({"volumes": 1}, {"volumes": 2}) == ["volumes"]
    assert await over({"gigabytes": 1}, {"gigabytes": 20}) == ["gigabytes"]
    other = RequestContext("user2", "project2")
    assert await over({"floating_ips": 1}, {"floating_ips": 1}, other) == ["floating_ips"]
    assert len(await _reserve(db, other, deltas={"floating_ips": 1},
                              limits={"floating_ips": 2})) == 1
    # 2 instances of 2 vcpus each
    assert await over({"cores": 1}, {"cores": 4}) == ["cores"]
    assert await _reserve(db, user, deltas={"cores": 1}, limits={"cores": 5})


async def test_reserve_validation(db, user, raw):
    with pytest.raises(exceptions.QuotaResourceUnknown) as info:
        await _reserve(db, user, deltas={"wings": 1, "instances": 1, "key_pairs": 1},
                       limits={"instances": 1})
    assert info.value.kwargs == {"unknown": ["key_pairs", "wings"], "code": 404}
    with pytest.raises(exceptions.QuotaResourceUnknown) as info:
        await _reserve(db, user, deltas={"ram": 1, "instances": 1, "cores": 1},
                       limits={"instances": 1})
    assert info.value.kwargs == {"unknown": ["cores", "ram"], "code": 404}
    for deltas, limits, expire in (([1], {}, FUTURE), ({"ram": "x"}, {"ram": 1}, FUTURE),
                                   ({"ram": 1}, {"ram": "x"}, FUTURE),
                                   ({"ram": 1}, {"ram": 1}, None)):
        with pytest.raises(exceptions.InvalidInput):
            await _reserve(db, user, deltas=deltas, limits=limits, expire=expire)
    with pytest.raises(exceptions.InvalidInput):
        await _reserve(db, user, deltas={"ram": 1}, limits={"ram": 1}, max_age="old")
    with pytest.raises(exceptions.NotAuthorized):
        await _reserve(db, RequestContext(None, None))
    assert await _rows(raw, QuotaUsage) == []
    # ``resources`` may be a dict, a list of names or None: it is not read
    assert await _reserve(db, user, deltas={}) == []
    for resources in ({"ram": {"sync": None}}, ["ram"], None):
        assert len(await db.quota_reserve(user, resources, {"ram": 10}, {"ram": 1}, FUTURE,
                                          None, None)) == 1


# --- commit, rollback, expire -------------------------------------------------------------

async def test_commit_and_rollback(db_config, db, admin, user, raw, monkeypatch):
    # reads across projects as 2012.2 answers them (strict isolation: test_isolation.py)
    monkeypatch.setattr(db_config, "isolation", "nova")
    await _seed(db, admin, (1, 1, 1))
    kept = await _reserve(db, user, deltas={"instances": 2, "cores": -1})
    dropped = await _reserve(db, user, deltas={"instances": 1, "ram": 5})
    assert (await _usages(db))["instances"]["reserved"] == 3

    assert await db.reservation_commit(user, kept + ["unknown"]) is None
    usages = await _usages(db)
    assert {r: (u["in_use"], u["reserved"]) for r, u in usages.items()} == {
        "instances": (3, 1), "cores": (0, 0), "ram": (1, 5)}
    await db.reservation_commit(user, kept)  # repeating is harmless
    assert await _usages(db) == usages

    assert await db.reservation_rollback(user, dropped) is None
    usages = await _usages(db)
    assert {r: (u["in_use"], u["reserved"]) for r, u in usages.items()} == {
        "instances": (3, 0), "cores": (0, 0), "ram": (1, 0)}
    rows = await _rows(raw, Reservation)
    assert all(r["deleted"] and r["deleted_at"] and r["updated_at"] for r in rows)
    assert await db.reservation_get_all_by_project(user, "project1") == {
        "project_id": "project1"}

    # another project's reservation: no usage of the caller's project -> nothing changes
    other = RequestContext("user2", "project2")
    theirs = await _reserve(db, other, deltas={"volumes": 1}, limits={"volumes": 3})
    mine = await _reserve(db, user, deltas={"instances": 1})
    for call in (db.reservation_commit, db.reservation_rollback):
        with pytest.raises(exceptions.QuotaUsageNotFound) as info:
            await call(user, mine + theirs)
        assert info.value.kwargs == {"project_id": "project1", "code": 404}
    assert (await _usages(db))["instances"]["reserved"] == 1
    assert (await db.reservation_get(user, theirs[0]))["deleted"] is False
    await db.reservation_commit(other, theirs)
    assert (await _usages(db, "project2"))["volumes"]["in_use"] == 1
    with pytest.raises(exceptions.InvalidInput):
        await db.reservation_commit(user, "not-a-list")


async def test_expire_sweeps_only_expired_reservations(db, admin, user):
    past = utcnow() - dt.timedelta(seconds=20)
    expired = await _reserve(db, user, deltas={"instances": 2, "cores": -1}, expire=past)
    assert (await db.quota_usage_get_all_by_project(user, "project1"))["instances"] == {
        "in_use": 0, "reserved": 2}
    live = await _reserve(db, user, deltas={"instances": 1})
    assert await db.reservation_expire(admin) is None
    assert (await db.quota_usage_get_all_by_project(user, "project1"))["instances"] == {
        "in_use": 0, "reserved": 1}
    assert (await _usages(db))["cores"]["reserved"] == 0
    for uuid_ in expired:
        with pytest.raises(exceptions.ReservationNotFound):
            await db.reservation_get(admin, uuid_)
    assert (await db.reservation_get(admin, live[0]))["delta"] == 1
    await db.reservation_expire(admin)  # nothing left to sweep
    assert (await _usages(db))["instances"]["reserved"] == 1


# --- concurrency (PostgreSQL) -------------------------------------------------------------

CALLERS = 20


async def test_concurrent_reserves_never_over_commit(rpc_client, pg_engine):
    await _wipe(pg_engine)
    user = RequestContext("user1", "project1")
    limits = {"instances": 7, "cores": 1000, "ram": 100000}
    # first-time calls: no usage row exists yet, so nothing can be row-locked
    results = await asyncio.gather(*(
        _reserve(rpc_client, user, deltas={"instances": 1, "cores": 2}, limits=limits)
        for _ in range(CALLERS)), return_exceptions=True)
    won = [r for r in results if isinstance(r, list)]
    lost = [r for r in results if not isinstance(r, list)]
    assert len(won) == 7, results
    assert all(isinstance(r, exceptions.OverQuota) for r in lost), lost
    rows = await _rows(pg_engine, QuotaUsage, deleted=False)
    assert sorted(r["resource"] for r in rows) == sorted(GROUP_I)  # one row each
    by_res = {r["resource"]: r for r in rows}
    assert (by_res["instances"]["reserved"], by_res["cores"]["reserved"]) == (7, 14)

    # commits, rollbacks and new reserves racing: no update is lost, the limit holds
    commits, rollbacks = won[:3], won[3:6]
    results = await asyncio.gather(
        *(rpc_client.reservation_commit(user, r) for r in commits),
        *(rpc_client.reservation_rollback(user, r) for r in rollbacks),
        *(_reserve(rpc_client, user, deltas={"instances": 1, "cores": 2}, limits=limits)
          for _ in range(CALLERS)), return_exceptions=True)
    assert all(r is None for r in results[:6]), results[:6]
    new = [r for r in results[6:] if isinstance(r, list)]
    assert all(isinstance(r, (list, exceptions.OverQuota)) for r in results[6:])
    assert len(new) <= 3  # 3 rolled back; the 3 committed stay in use
    while True:  # fill what is left, one at a time: exactly the limit is reached
        try:
            new.append(await _reserve(rpc_client, user, deltas={"instances": 1, "cores": 2},
                                      limits=limits))
        except exceptions.OverQuota:
            break
    assert len(new) == 3
    by_res = {r["resource"]: r for r in await _rows(pg_engine, QuotaUsage, deleted=False)}
    live = await _rows(pg_engine, Reservation, deleted=False)
    assert len(live) == 2 * (1 + len(new))  # won[6] and the new ones, two resources each
    assert by_res["instances"]["in_use"] == 3 and by_res["cores"]["in_use"] == 6
    assert by_res["instances"]["reserved"] == sum(r["delta"] for r in live
                                                  if r["resource"] == "instances")
    assert by_res["cores"]["reserved"] == 2 * by_res["instances"]["reserved"]
    assert by_res["instances"]["in_use"] + by_res["instances"]["reserved"] == 7


async def test_concurrent_commit_and_expire_count_each_reservation_once(rpc_client,
                                                                       pg_engine):
    await _wipe(pg_engine)
    user, admin = RequestContext("user1", "project1"), get_admin_context()
    past = utcnow() - dt.timedelta(seconds=5)
    made = [await _reserve(rpc_client, user, deltas={"instances": 1},
                           limits={"instances": 100}, expire=past) for _ in range(10)]
    await asyncio.gather(*(rpc_client.reservation_commit(user, r) for r in made),
                         *(rpc_client.reservation_expire(admin) for _ in range(5)))
    usage = await rpc_client.quota_usage_get(admin, "project1", "instances")
    committed = usage["in_use"]
    assert usage["reserved"] == 0 and 0 <= committed <= 10
    assert await _rows(pg_engine, Reservation, deleted=False) == []


async def test_over_quota_keeps_the_refreshes_it_made(db, admin, user):
    # §4.3 step 7: usages refreshed by an over-quota call stay refreshed.
    for _ in range(3):
        await db.instance_create(user, {"project_id": "project1", "vcpus": 2})
    await _seed(db, admin, (0, 0, 0), until_refresh=1)  # stale, due for a refresh
    with pytest.raises(exceptions.OverQuota) as info:
        await _reserve(db, user, deltas={"instances": 1}, limits={"instances": 3},
                       until_refresh=5)
    assert info.value.kwargs["overs"] == ["instances"]
    usages = await _usages(db)
    assert usages["instances"]["in_use"] == 3 and usages["cores"]["in_use"] == 6
    # ... while a job queue still undoes everything, refreshes included
    await db.quota_usage_update(admin, "project1", "instances", 0, 0, 1)
    with pytest.raises(exceptions.OverQuota) as info:
        async with db.job_queue() as q:
            q.quota_reserve(user, ["instances"], {"instances": 3}, {"instances": 1}, FUTURE,
                            5, 0)
    assert info.value.batch_index == 0
    assert (await _usages(db))["instances"]["in_use"] == 0
