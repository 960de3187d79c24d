import pytest

from schemas import codec, envelope, exceptions
from schemas.context import RequestContext, get_admin_context


def _body(**overrides):
    body = {"v": "1.0", "method": "service_get", "args": [1], "kwargs": {},
            "context": get_admin_context().to_dict(), "deadline": None}
    body.update(overrides)
    return codec.packb({k: v for k, v in body.items() if v is not ...})


def test_request_round_trip():
    req = envelope.Request("instance_get", [5], {"x": 1}, {"user_id": "u"}, deadline=12.5)
    out = envelope.decode_request(req.encode())
    assert (out.method, out.args, out.kwargs, out.context, out.deadline) == \
        ("instance_get", [5], {"x": 1}, {"user_id": "u"}, 12.5)


@pytest.mark.parametrize("overrides, message", [
    ({"v": "nine"}, "unsupported protocol version"),
    ({"v": 1.0}, "unsupported protocol version"),
    ({"v": ...}, "unsupported protocol version"),
    ({"method": 5}, "'method' must be a non-empty string"),
    ({"method": ""}, "'method' must be a non-empty string"),
    ({"args": {"a": 1}}, "'args' must be an array"),
    ({"kwargs": [1]}, "'kwargs' must be a map"),
    ({"kwargs": {1: 2}}, "'kwargs' must be a map with string keys"),
    ({"context": "admin"}, "'context' must be a map"),
    ({"deadline": "soon"}, "'deadline' must be a number"),
])
def test_invalid_requests_say_what_is_wrong(overrides, message):
    with pytest.raises(envelope.EnvelopeError, match=message):
        envelope.decode_request(_body(**overrides))


def test_non_map_and_garbage():
    with pytest.raises(envelope.EnvelopeError, match="must be a map"):
        envelope.decode_request(codec.packb([1, 2]))
    with pytest.raises(envelope.EnvelopeError):
        envelope.decode_request(b"\xc1garbage")


def test_batch_bounds():
    calls = [{"method": "service_get", "args": [1], "kwargs": {}}] * 3
    out = envelope.decode_request(_body(method=envelope.BATCH_METHOD, calls=calls))
    assert [c.method for c in out.calls] == ["service_get"] * 3
    with pytest.raises(envelope.EnvelopeError, match="at most 2"):
        envelope.decode_request(_body(method=envelope.BATCH_METHOD, calls=calls), max_batch=2)
    with pytest.raises(envelope.EnvelopeError, match="non-empty"):
        envelope.decode_request(_body(method=envelope.BATCH_METHOD, calls=[]))


def test_replies():
    assert envelope.decode_reply(envelope.encode_result((1, 2))) == (True, (1, 2))
    err = {"class": "InstanceNotFound", "message": "m", "kwargs": {"instance_id": 1}}
    assert envelope.decode_reply(envelope.encode_error(err)) == (False, err)
    with pytest.raises(envelope.EnvelopeError):
        envelope.decode_reply(codec.packb({"nothing": 1}))


def test_context_round_trip_and_rules():
    ctx = RequestContext("u", "p", roles=["Member"], quota_class="gold")
    back = RequestContext.from_dict(codec.unpackb(codec.packb(ctx.to_dict())))
    assert back.to_dict() == ctx.to_dict()
    assert not ctx.is_admin
    assert RequestContext("u", "p", roles=["admin"]).is_admin
    with pytest.raises(ValueError, match="read_deleted"):
        RequestContext("u", "p", read_deleted="maybe")
    admin = ctx.elevated(read_deleted="yes")
    assert admin.is_admin and "admin" in admin.roles and admin.read_deleted == "yes"
    assert not ctx.is_admin and ctx.roles == ["Member"]
    a = get_admin_context("only")
    assert (a.user_id, a.project_id, a.is_admin, a.read_deleted) == (None, None, True, "only")
    assert RequestContext.from_dict({"user_id": "u", "project_id": "p", "future": 1}).user_id == "u"


def test_an_unsupported_version_is_named_but_clipped():
    body = codec.packb({"v": "9" * 100_000, "method": "m", "context": {}})
    with pytest.raises(envelope.EnvelopeError, match="unsupported protocol version") as info:
        envelope.decode_request(body)
    assert len(str(info.value)) < 200


@pytest.mark.parametrize("version", ["1.1", "2.0"])
def test_a_newer_version_is_unsupported_naming_both(version):
    with pytest.raises(exceptions.UnsupportedVersion) as info:
        envelope.decode_request(_body(v=version, method="service_get"))
    assert info.value.kwargs == {"method": "service_get", "version": version,
                                 "supported": "1.0", "code": 400}
    assert str(info.value) == (f"service_get was sent as protocol version {version}; this "
                               "conductor speaks at most 1.0")
