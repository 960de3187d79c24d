"""EC2 volume and snapshot id mappings (api-compute.md §3.12), through the client and on
SQLite."""

import pytest

from schemas import exceptions
from schemas.context import RequestContext

FAMILIES = [("volume", exceptions.VolumeNotFound, "volume_id"),
            ("snapshot", exceptions.SnapshotNotFound, "snapshot_id")]


def _calls(db, kind):
    return (getattr(db, f"ec2_{kind}_create"), getattr(db, f"get_ec2_{kind}_id_by_uuid"),
            getattr(db, f"get_{kind}_uuid_by_ec2_id"))


@pytest.mark.parametrize("kind, error, key", FAMILIES)
async def test_create_and_look_up_both_ways(db, user, kind, error, key):
    create, ec2_id_of, uuid_of = _calls(db, kind)
    made = await create(user, "uuid-1")  # a user context may create one (TESTED)
    assert made["uuid"] == "uuid-1" and made["id"] > 0 and made["deleted"] is False
    assert await ec2_id_of(user, "uuid-1") == made["id"]
    assert await uuid_of(user, made["id"]) == "uuid-1"
    assert await uuid_of(user, str(made["id"])) == "uuid-1"
    # a second row for one uuid: the first one is the answer
    again = await create(user, "uuid-1")
    assert again["id"] > made["id"] and await ec2_id_of(user, "uuid-1") == made["id"]
    for call, arg in ((ec2_id_of, "fake"), (uuid_of, "fake"), (uuid_of, 999),
                      (uuid_of, 2**40), (ec2_id_of, None)):
        with pytest.raises(error) as info:
            await call(user, arg)
        assert info.value.kwargs == {key: arg, "code": 404}
        assert "fake" in str(info.value) or arg != "fake"
    with pytest.raises(exceptions.NotAuthorized):
        await create(RequestContext(None, None), "uuid-2")


@pytest.mark.parametrize("kind, error, key", FAMILIES)
async def test_forced_ids_and_the_sequence(db, user, kind, error, key):
    create, ec2_id_of, uuid_of = _calls(db, kind)
    forced = await create(user, "uuid-f", forced_id=77)
    assert forced["id"] == 77 and await ec2_id_of(user, "uuid-f") == 77
    assert await uuid_of(user, 77) == "uuid-f"
    # the sequence moved past the forced id, and never back
    assert (await create(user, "uuid-n"))["id"] == 78
    await create(user, "uuid-low", 5)
    assert (await create(user, "uuid-m"))["id"] == 79
    with pytest.raises(exceptions.DBError):
        await create(user, "uuid-dup", 77)
    with pytest.raises(exceptions.InvalidInput):
        await create(user, "uuid-bad", "seventy")
    with pytest.raises(error):
        await ec2_id_of(user, "uuid-dup")
