"""``salesflow config show`` and the checks every command runs before it starts.

Before a command that reads settings, they are loaded once so that a bad value or an unreadable
``*_FILE`` secret ends it with one line, not a traceback; before a command that talks to a secured
Kafka (or Postgres), one connection attempt (``kafka_check.py``) turns a wrong password or an
untrusted certificate into a clear error and a non-zero exit, instead of retries. Messages never
contain a secret.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import typer

from salesflow.cli.common import console, err_console
from salesflow.errors import SalesflowError

if TYPE_CHECKING:
    from salesflow.settings import Settings

config_app = typer.Typer(help="Effective configuration (secrets masked).", no_args_is_help=True)

# Commands that connect to Kafka as soon as they start: checked first.
KAFKA_COMMANDS = frozenset({"worker", "projection", "topics", "produce", "replay", "lag"})
# Commands that use Postgres: a TLS or authentication error ends them at once (an outage does not).
DATABASE_COMMANDS = frozenset({"projection", "db", "summary", "dlq", "replay"})
# Commands that read no settings at all.
SETTINGS_FREE_COMMANDS = frozenset({"dev", "handlers"})
EXIT_CONFIG, EXIT_CONNECT = 2, 1


@config_app.command("show")
def show() -> None:
    """Print every setting as its SALESFLOW_* variable and effective value; secrets are masked."""
    from salesflow.secrets import MASK

    # Plain "NAME  value" lines: nothing cut at the terminal's width, easy to grep or diff.
    for name, value in display_values(load_settings()).items():
        console.print(f"{'SALESFLOW_' + name.upper():<40} {value}", markup=False, highlight=False, soft_wrap=True)
    console.print(
        f"# secrets show as {MASK} when set; any secret can also come from a file named by SALESFLOW_<NAME>_FILE",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


def display_values(settings: Settings) -> dict[str, str]:
    """Every setting rendered for people: secrets masked, the database URL without its password."""
    shown: dict[str, str] = {}
    for name in type(settings).model_fields:
        shown[name] = display(name, getattr(settings, name))
    return shown


def display(name: str, value: Any) -> str:
    from pydantic import SecretStr

    from salesflow.db.urls import mask_password
    from salesflow.secrets import MASK

    if isinstance(value, SecretStr):
        return MASK
    if value is None:
        return "(not set)"
    if name == "database_url":
        return mask_password(value)
    return str(value)


def load_settings() -> Settings:
    """``Settings()``, or exit 2 with the reason (variable names and messages only, never values)."""
    from pydantic import ValidationError

    from salesflow.settings import Settings

    try:
        return Settings()
    except ValidationError as exc:
        for error in exc.errors(include_input=False, include_url=False):
            where = "_".join(str(part) for part in error["loc"]).upper()
            _fail(f"SALESFLOW_{where}: {error['msg']}" if where else error["msg"], EXIT_CONFIG)
        raise typer.Exit(EXIT_CONFIG) from None
    except SalesflowError as exc:
        _fail(str(exc), EXIT_CONFIG)
        raise typer.Exit(EXIT_CONFIG) from None


def check_before_command(ctx: typer.Context) -> None:
    """Group callback: validate settings, and the Kafka connection for Kafka commands."""
    command = ctx.invoked_subcommand
    if command is None or command in SETTINGS_FREE_COMMANDS or _asks_for_help():
        return
    settings = load_settings()
    # Only for secured connections: that is where a setting can be wrong in ways a client only
    # reports as "unable to bootstrap"; a plaintext start stays as fast as it was.
    try:
        if command in KAFKA_COMMANDS and settings.kafka_security_protocol != "PLAINTEXT":
            from salesflow.kafka_check import verify_connection

            _run_aside(verify_connection(settings))
        if command in DATABASE_COMMANDS and (
            settings.database_sslmode or settings.database_password or "sslmode=" in settings.database_url
        ):
            _run_aside(_verify_database(settings))
    except SalesflowError as exc:
        _fail(str(exc), EXIT_CONNECT)
        raise typer.Exit(EXIT_CONNECT) from None


async def _verify_database(settings: Settings) -> None:
    """Raise ``DatabaseConnectError``/``ConfigurationError`` for TLS or authentication failures; a
    database that is down is left to the command's own retries."""
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    from salesflow import bootstrap

    async with bootstrap.database(settings, pool_size=1) as engine:
        try:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except (OSError, DBAPIError, TimeoutError):
            pass


def _run_aside(check: Coroutine[Any, Any, None]) -> None:
    # In a thread of its own: asyncio.run() in the main thread would leave it with no current event
    # loop, and the command that follows (Faust's worker) must find the main thread as it was.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, check).result()


def install(app: typer.Typer) -> None:
    """Add ``salesflow config`` and the pre-command checks to the CLI."""
    app.add_typer(config_app, name="config")
    app.callback()(check_before_command)


def _asks_for_help() -> bool:
    # The group callback runs before a subcommand parses its own --help: nothing to check then.
    return any(arg in ("--help", "-h") for arg in sys.argv[1:])


def _fail(message: str, code: int) -> None:
    err_console.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
