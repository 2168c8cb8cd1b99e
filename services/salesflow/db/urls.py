"""Database URLs: merge the password and TLS settings in, and mask the password for display.

The effective ``database_url`` carries everything a connection needs (libpq-style ``sslmode``,
``sslrootcert``, ``sslcert``, ``sslkey`` query parameters), because several places build engines
from that one string; ``db/engine.py`` turns the TLS parameters into asyncpg's ``ssl`` argument.
"""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

TLS_PARAMETERS = ("sslmode", "sslrootcert", "sslcert", "sslkey")
_USERINFO = re.compile(r"(://[^:/@]*:)[^@]*@")


def with_connection_options(url: str, *, password: str | None = None, **tls: str | Path | None) -> str:
    """``url`` with ``password`` and the given TLS query parameters set (others kept as they are)."""
    query = {name: str(value) for name, value in tls.items() if value is not None}
    if password is None and not query:
        return url
    unknown = set(query) - set(TLS_PARAMETERS)
    if unknown:
        raise ValueError(f"unknown TLS parameters {sorted(unknown)}")
    try:
        parsed = make_url(url)
    except ArgumentError:
        # Never echo the URL: it may hold a password.
        raise ValueError("SALESFLOW_DATABASE_URL is not a valid database URL") from None
    if password is not None:
        parsed = parsed.set(password=password)
    return parsed.update_query_dict(query).render_as_string(hide_password=False)


def mask_password(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``; safe to print or log."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return _USERINFO.sub(r"\1***@", url)
