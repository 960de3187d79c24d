"""Passwords from files or the environment into the URLs, TLS options onto the broker
URL, and the places a URL is shown: never with its password."""

from __future__ import annotations

import json
import logging

import pytest
import yarl
from sqlalchemy.engine import make_url

from client import ConductorClient
from client.urls import broker_url, masked
from conductor import logs
from conductor.db.engine import safe_url
from conductor.settings import Settings, from_sources

ODD = "p@ss:w/rd%?&# é"  # every character a URL treats specially


@pytest.fixture
def password_file(tmp_path):
    path = tmp_path / "password"
    path.write_text(ODD + "\n")
    return str(path)


def test_password_files_reach_both_urls_intact(password_file):
    settings = from_sources({"amqp_url": "amqp://conductor@rabbit:5672/nova",
                             "db_url": "postgresql://conductor@db/nova",
                             "amqp_password_file": password_file,
                             "db_password_file": password_file}, environ={})
    amqp = yarl.URL(settings.amqp_url)
    assert (amqp.user, amqp.password, amqp.host, amqp.path) == \
        ("conductor", ODD, "rabbit", "/nova")
    db = make_url(settings.db_url)
    assert (db.username, db.password, db.host, db.database) == \
        ("conductor", ODD, "db", "nova")
    assert ODD not in repr(settings)


def test_passwords_from_the_environment_and_files_named_there(password_file):
    settings = from_sources({}, environ={
        "CONDUCTOR_AMQP_URL": "amqp://conductor@rabbit/",
        "CONDUCTOR_AMQP_PASSWORD": "from-env",
        "CONDUCTOR_DB_URL": "postgresql://conductor@db/nova",
        "CONDUCTOR_DB_PASSWORD_FILE": password_file})
    assert yarl.URL(settings.amqp_url).password == "from-env"
    assert make_url(settings.db_url).password == ODD
    # A file wins over the password itself in the environment.
    settings = from_sources({"amqp_password_file": password_file},
                            environ={"CONDUCTOR_AMQP_PASSWORD": "from-env"})
    assert yarl.URL(settings.amqp_url).password == ODD


def test_an_unreadable_or_empty_password_file_is_said(tmp_path):
    with pytest.raises(ValueError, match="cannot read the password file"):
        from_sources({"db_password_file": str(tmp_path / "missing")}, environ={})
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ValueError, match="is empty"):
        from_sources({"db_password_file": str(tmp_path / "empty")}, environ={})


def test_tls_options_go_into_the_broker_url_query(tmp_path):
    for name in ("ca.pem", "client.pem", "client.key"):
        (tmp_path / name).write_text("")
    settings = from_sources({}, environ={
        "CONDUCTOR_AMQP_URL": "amqps://rabbit:5671/",
        "CONDUCTOR_AMQP_CA_FILE": str(tmp_path / "ca.pem"),
        "CONDUCTOR_AMQP_CERT_FILE": str(tmp_path / "client.pem"),
        "CONDUCTOR_AMQP_KEY_FILE": str(tmp_path / "client.key"),
        "CONDUCTOR_AMQP_AUTH": "external"})
    # The names aiormq reads (it builds the SSL context and picks EXTERNAL from them).
    assert dict(yarl.URL(settings.amqp_url).query) == {
        "cafile": str(tmp_path / "ca.pem"), "certfile": str(tmp_path / "client.pem"),
        "keyfile": str(tmp_path / "client.key"), "auth": "external"}


def test_impossible_tls_combinations_are_refused_before_connecting(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("")
    with pytest.raises(ValueError, match="need an amqps:// broker URL"):
        Settings(amqp_url="amqp://rabbit/", amqp_ca_file=str(ca))
    with pytest.raises(ValueError, match="needs a client certificate"):
        Settings(amqp_url="amqps://rabbit/", amqp_auth="external")
    with pytest.raises(ValueError, match="not a readable file"):
        Settings(amqp_url="amqps://rabbit/", amqp_ca_file=str(tmp_path / "missing.pem"))
    with pytest.raises(ValueError, match="plain or external"):
        Settings(amqp_auth="kerberos")
    with pytest.raises(ValueError, match="need an amqps:// broker URL"):
        ConductorClient("amqp://rabbit/", ca_file=str(ca))


def test_a_client_password_is_put_in_the_url_not_formatted_into_it():
    url = broker_url("amqps://compute@rabbit/", password=ODD)
    assert yarl.URL(url).password == ODD
    assert masked(url) == "amqps://compute:******@rabbit/"
    assert masked("amqp://[broken") == "<unparseable broker URL>"


def test_database_urls_in_logs_hide_the_password_and_a_keys_sslpassword():
    shown = safe_url(f"postgresql://conductor:{'secret1'}@db/nova?sslmode=verify-full"
                     f"&sslrootcert=/etc/ca.pem&sslpassword=secret2")
    assert "secret1" not in shown and "secret2" not in shown
    assert "sslmode=verify-full" in shown


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_hidden_secrets_never_reach_a_log_line(fmt, capsys):
    logs.configure(fmt, logging.INFO)
    try:
        logs.hide(ODD)
        # As a library might log it: raw, URL-encoded, inside an exception.
        log = logging.getLogger("some.library")
        log.warning("connecting to amqp://u:%s@h/ and %s", yarl.URL("amqp://u@h/")
                    .with_password(ODD).raw_password,
                    make_url("postgresql://u@h/d").set(password=ODD)
                    .render_as_string(hide_password=False))
        try:
            raise RuntimeError(f"bad password {ODD}")
        except RuntimeError:
            log.exception("failed")
        err = capsys.readouterr().err
    finally:
        logging.getLogger().handlers.clear()
    assert err.count(logs.MASK) >= 3
    db_url = make_url("postgresql://u@h/d").set(password=ODD)
    for form in (ODD, yarl.URL("amqp://u@h/").with_password(ODD).raw_password,
                 db_url.render_as_string(hide_password=False), json.dumps(ODD)[1:-1]):
        assert form not in err


def test_settings_name_their_passwords_but_not_a_login_repeated():
    settings = Settings(amqp_url="amqp://guest:guest@rabbit/",
                        db_url="postgresql://conductor:s3cret@db/nova")
    assert settings.secrets() == ["s3cret"]
