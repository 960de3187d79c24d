"""PostgreSQL's TLS options, written in the database URL as psql takes them, reach asyncpg
(the test server has TLS off, so asking for TLS must fail, and saying no must work); and
a password from a file reaches it intact."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from conductor.db.engine import make_engine
from conductor.settings import from_sources


def _with_query(pg_url: str, **query: str) -> str:
    return make_url(pg_url).update_query_dict(query).render_as_string(hide_password=False)


async def _ssl_in_use(url: str) -> bool:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return bool(await conn.scalar(text(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")))
    finally:
        await engine.dispose()


async def test_sslmode_disable_connects_in_the_clear(pg_url):
    assert await _ssl_in_use(_with_query(pg_url, sslmode="disable")) is False


@pytest.mark.parametrize("query", [{"sslmode": "require"}, {"ssl": "require"}])
async def test_sslmode_require_insists_on_tls(pg_url, query):
    with pytest.raises(ConnectionError, match="rejected SSL upgrade"):
        await _ssl_in_use(_with_query(pg_url, **query))


async def test_verify_full_reads_the_root_certificate_named_in_the_url(pg_url, tmp_path):
    missing = tmp_path / "root.crt"
    with pytest.raises(FileNotFoundError):
        await _ssl_in_use(_with_query(pg_url, sslmode="verify-full",
                                      sslrootcert=str(missing)))


async def test_a_password_file_reaches_asyncpg_intact(pg_url, tmp_path):
    password = "p@ss:w/rd%?&# é"
    (tmp_path / "pw").write_text(password + "\n")
    settings = from_sources({"db_url": pg_url, "db_password_file": str(tmp_path / "pw")},
                            environ={})
    engine = make_engine(settings.db_url)
    try:
        _, kwargs = engine.sync_engine.dialect.create_connect_args(engine.url)
        assert kwargs["password"] == password
        # Trust authentication on the test server: the login works with any password.
        async with engine.connect() as conn:
            assert await conn.scalar(text("SELECT 1")) == 1
    finally:
        await engine.dispose()
