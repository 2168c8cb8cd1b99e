"""The async engine factory: called by the composition root, never at import time.

TLS for Postgres is asked for the way libpq users know, with ``sslmode`` / ``sslrootcert`` /
``sslcert`` / ``sslkey`` query parameters on the URL (``Settings`` merges its ``database_ssl*``
settings in). asyncpg takes none of those as keyword arguments, so they are turned into its
``ssl`` argument here: an ``SSLContext`` that verifies the server as the mode says.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Dialect, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from salesflow.db.urls import TLS_PARAMETERS
from salesflow.errors import ConfigurationError, DatabaseConnectError

# libpq's meanings: "require" encrypts without checking who answers (unless a CA is given),
# "verify-ca" checks the chain, "verify-full" the chain and the host name.
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


def create_engine(database_url: str, *, pool_size: int = 5) -> AsyncEngine:
    """An engine for ``database_url``, with its TLS query parameters applied to every connection."""
    url, connect_args = asyncpg_connect_args(database_url)
    engine = create_async_engine(url, pool_size=pool_size, pool_pre_ping=True, connect_args=connect_args)
    event.listen(engine.sync_engine, "do_connect", _connect_or_explain(url))
    return engine


def asyncpg_connect_args(database_url: str | URL) -> tuple[URL, dict[str, Any]]:
    """The URL without its TLS parameters, and asyncpg's ``ssl`` argument made from them."""
    url = make_url(database_url)
    params = {name: _single(url.query[name]) for name in TLS_PARAMETERS if name in url.query}
    url = url.difference_update_query(TLS_PARAMETERS)
    if not params:
        return url, {}
    return url, {"ssl": ssl_argument(params)}


def ssl_argument(params: Mapping[str, str]) -> ssl.SSLContext | str | bool:
    """asyncpg's ``ssl`` value for libpq-style parameters (``sslmode`` defaults to ``prefer``)."""
    mode = params.get("sslmode", "prefer")
    if mode not in SSL_MODES:
        raise ConfigurationError(f"sslmode={mode!r}: use one of {', '.join(SSL_MODES)}")
    rootcert = _existing(params.get("sslrootcert"), "sslrootcert (SALESFLOW_DATABASE_SSL_ROOTCERT)")
    if mode == "disable":
        return False
    if mode in ("allow", "prefer"):
        return mode  # asyncpg's own: TLS if offered, no verification (libpq does the same)
    if mode == "require" and rootcert is None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        # verify-*, or require with a CA file (libpq then verifies the chain as verify-ca does).
        context = ssl.create_default_context(cafile=rootcert)
        context.check_hostname = mode == "verify-full"
    certfile = _existing(params.get("sslcert"), "sslcert (SALESFLOW_DATABASE_SSL_CERT)")
    if certfile:
        keyfile = _existing(params.get("sslkey"), "sslkey (SALESFLOW_DATABASE_SSL_KEY)")
        context.load_cert_chain(certfile, keyfile)
    return context


def _connect_or_explain(url: URL) -> Any:
    where = f"Postgres at {url.host}:{url.port or 5432}/{url.database} as user {url.username!r}"

    def connect(dialect: Dialect, _record: Any, cargs: tuple[Any, ...], cparams: dict[str, Any]) -> Any:
        # TLS and authentication failures are permanent: raise them as DatabaseConnectError (not an
        # OSError or a DBAPI error), so no retry loop mistakes them for an outage.
        mode = _mode_of(cparams.get("ssl"))
        try:
            return dialect.connect(*cargs, **cparams)
        except ssl.SSLCertVerificationError as exc:
            raise DatabaseConnectError(
                f"cannot connect to {where} (sslmode={mode}): TLS error: the server's certificate is not "
                f"trusted ({exc.verify_message}); check SALESFLOW_DATABASE_SSL_ROOTCERT"
            ) from None
        except ssl.SSLError as exc:
            raise DatabaseConnectError(
                f"cannot connect to {where} (sslmode={mode}): TLS error: {exc.reason or exc}"
            ) from None
        except dialect.loaded_dbapi.Error as exc:
            # The adapter wraps asyncpg's error; 28xxx is "invalid authorization" (password, pg_hba).
            if not str(getattr(exc, "sqlstate", "") or "").startswith("28"):
                raise
            raise DatabaseConnectError(
                f"cannot connect to {where} (sslmode={mode}): {_first_line(exc)}; check the user, "
                "SALESFLOW_DATABASE_PASSWORD (or ..._FILE), and sslmode against the server's pg_hba.conf"
            ) from None

    return connect


def _mode_of(ssl_value: Any) -> str:
    if isinstance(ssl_value, ssl.SSLContext):
        if ssl_value.verify_mode == ssl.CERT_NONE:
            return "require"
        return "verify-full" if ssl_value.check_hostname else "verify-ca"
    if ssl_value is False:
        return "disable"
    return str(ssl_value or "prefer")


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).splitlines()[0]
    return text.removeprefix("(sqlalchemy.dialects.postgresql.asyncpg.Error) ")


def _single(value: str | tuple[str, ...]) -> str:
    return value[-1] if isinstance(value, tuple) else value


def _existing(path: str | None, what: str) -> str | None:
    if path is None:
        return None
    if not Path(path).expanduser().is_file():
        raise ConfigurationError(f"{what}={path}: no such file")
    return str(Path(path).expanduser())


@asynccontextmanager
async def engine_scope(database_url: str, *, pool_size: int = 5) -> AsyncIterator[AsyncEngine]:
    """An engine (nothing connects until it is used), disposed when the block ends."""
    engine = create_engine(database_url, pool_size=pool_size)
    try:
        yield engine
    finally:
        await engine.dispose()
