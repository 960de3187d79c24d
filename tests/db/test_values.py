"""Caller values against columns: conversions, refusals, unknown keys."""

import datetime as dt
import logging

import pytest
from sqlalchemy import text

from conductor.db import values
from conductor.db.models import ComputeNode, Service
from conductor.db.session import Session
from schemas import exceptions

services = Service.__table__


@pytest.mark.parametrize("column, given, stored", [
    ("host", 12, "12"), ("report_count", "7", 7), ("report_count", 3.0, 3),
    ("disabled", 1, True), ("disabled", False, False),
    ("created_at", "2012-09-27T10:00:00", dt.datetime(2012, 9, 27, 10)),
    ("created_at", "2012-09-27T12:00:00+02:00", dt.datetime(2012, 9, 27, 10)),
    ("created_at", dt.date(2012, 9, 27), dt.datetime(2012, 9, 27)),
])
def test_lossless_conversions(column, given, stored):
    out = values.check_values(services, {column: given}, "t")
    assert out == {column: stored} and type(out[column]) is type(stored)


@pytest.mark.parametrize("column, given, reason", [
    ("report_count", "seven", "expects an integer"), ("report_count", 2.5, "expects an integer"),
    ("report_count", 2**40, "32-bit"), ("disabled", "yes", "expects a boolean"),
    ("host", "h" * 256, "at most 255"), ("host", b"bytes", "expects a string"),
    ("host", "nul\x00", "NUL"), ("created_at", "yesterday", "expects a datetime"),
    ("report_count", None, "may not be null"),
])
def test_refusals_name_the_column(column, given, reason):
    with pytest.raises(exceptions.InvalidInput, match=f"services.{column}: .*{reason}"):
        values.check_values(services, {column: given}, "t")


def test_unknown_keys_are_logged_once_or_refused_when_strict(caplog):
    caplog.set_level(logging.WARNING, "conductor.db.values")
    for _ in range(3):
        assert values.check_values(services, {"host": "h", "colour": "red"}, "fn_a") == \
            {"host": "h"}
    assert [r.getMessage() for r in caplog.records].count(
        "fn_a: ignoring key 'colour', which is not a column of services") == 1
    with pytest.raises(exceptions.InvalidInput, match="no column 'colour'"):
        values.check_values(services, {"colour": "red"}, "fn_a", strict=True)
    assert values.check_values(ComputeNode.__table__, {"stats": {}}, "fn_b",
                               allowed_extra=("stats",), strict=True) == {}


async def test_stored_values_read_back_converted(engine):
    async with engine.begin() as conn:
        session = Session(conn, "test")
        row = await session.insert(Service, {"host": 12, "report_count": "4"},
                                   echo={"host": 12})
        assert row["host"] == 12 and row["report_count"] == 4
        got = (await conn.execute(text("SELECT host, report_count FROM services"))).one()
        assert tuple(got) == ("12", 4)


async def test_sqlite_synchronous_switch(tmp_path):
    from conductor.db.engine import make_engine

    for synchronous, expected in ((True, 2), (False, 0)):
        eng = make_engine(f"sqlite+aiosqlite:///{tmp_path}/s{expected}.sqlite",
                          sqlite_synchronous=synchronous)
        async with eng.connect() as conn:
            assert (await conn.execute(text("PRAGMA synchronous"))).scalar() == expected
            assert (await conn.execute(text("SELECT 'abc' REGEXP 'b.$'"))).scalar() == 1
        await eng.dispose()
