"""Broker URLs with TLS, a certificate login and a password, and the same URLs for logs.

aiormq already reads everything TLS needs from the URL's query (``cafile``, ``certfile``,
``keyfile``, ``auth=external``) and builds the SSL context from it at each connect, so
the options are put there, through yarl, rather than into an SSL context of our own.  A
password is set on the URL object, never formatted into its text, so any character in it
survives.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import yarl

MASK = "******"


def broker_url(url: str, *, password: str | None = None, ca_file: str | None = None,
               cert_file: str | None = None, key_file: str | None = None,
               external: bool = False) -> str:
    """``url`` with ``password`` and the TLS options put in; ValueError for a combination
    the broker could not accept (TLS options on ``amqp://``, EXTERNAL without a client
    certificate) or a file that is not readable, said before any connection is tried."""
    parsed = yarl.URL(url)
    if password is not None:
        parsed = parsed.with_password(password)
    files = {"cafile": ca_file, "certfile": cert_file, "keyfile": key_file}
    parsed = parsed.update_query({k: v for k, v in files.items() if v is not None})
    if external:
        parsed = parsed.update_query(auth="external")
    query = parsed.query
    tls_options = sorted(k for k in (*files, "auth") if k in query)
    if tls_options and parsed.scheme != "amqps":
        raise ValueError(f"{', '.join(tls_options)} need an amqps:// broker URL, not "
                         f"{parsed.scheme}://")
    if query.get("auth", "plain").lower() == "external" and "certfile" not in query:
        raise ValueError("an EXTERNAL login needs a client certificate (cert_file)")
    for key in files:
        path = query.get(key)
        if path is not None and not os.access(path, os.R_OK):
            raise ValueError(f"the {key} {path!r} is not a readable file")
    return str(parsed)


def masked(url: str) -> str:
    """``url`` as it may appear in a log line or an error: the password hidden."""
    try:
        parsed = yarl.URL(url)
    except ValueError:
        return "<unparseable broker URL>"
    return str(parsed.with_password(MASK)) if parsed.password else str(parsed)


def broker_urls(url: str | Sequence[str]) -> list[str]:
    """The broker URLs in ``url``: one, several separated by commas, or a sequence of
    them (nodes of one cluster, tried in turn)."""
    items = [url] if isinstance(url, str) else list(url)
    urls = [u.strip() for item in items for u in item.split(",") if u.strip()]
    if not urls:
        raise ValueError("no broker URL given")
    return urls


def joined(urls: Sequence[str]) -> str:
    """Several URLs as one setting, separated by commas; a comma inside one (yarl leaves
    them as they are, in a password say) is written %2C, which reads back the same."""
    return ",".join(url.replace(",", "%2C") for url in urls)
