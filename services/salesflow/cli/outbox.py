"""``salesflow outbox``: migrate a service's outbox table, run the relay, show the backlog."""

from __future__ import annotations

import typer
from pydantic import SecretStr

from salesflow.cli.common import console, run, settings
from salesflow.outbox.outbox_settings import OutboxSettings

outbox_app = typer.Typer(help="The transactional outbox of an upstream service.", no_args_is_help=True)

DATABASE_URL = typer.Option(
    None,
    "--database-url",
    help="The service's database (default: SALESFLOW_OUTBOX_DATABASE_URL, else SALESFLOW_DATABASE_URL).",
)


def _database_url(given: str | None) -> str:
    return given or OutboxSettings().url(settings().database_url)


@outbox_app.command("migrate")
def migrate_command(database_url: str | None = DATABASE_URL, revision: str = typer.Argument("head")) -> None:
    """Create the outbox table in the service's database (Alembic version table salesflow_outbox_version)."""
    from salesflow.outbox.migrate import upgrade as migrate_outbox

    migrate_outbox(_database_url(database_url), revision)
    console.print(f"outbox table at {revision}")


@outbox_app.command("relay")
def relay_command(database_url: str | None = DATABASE_URL) -> None:
    """Publish committed outbox rows to Kafka in order; several may run, one leads (SALESFLOW_OUTBOX_*)."""
    from salesflow.bootstrap import run_relay

    config = OutboxSettings()
    if database_url:
        config = config.model_copy(update={"database_url": SecretStr(database_url)})
    run_relay(settings(), config)


@outbox_app.command("status")
def status_command(database_url: str | None = DATABASE_URL) -> None:
    """Rows waiting in the outbox and the age of the oldest."""
    from salesflow.outbox.relay import backlog

    rows, age = run(backlog(_database_url(database_url)))
    console.print(f"{rows} rows waiting; oldest {age:.1f} s old")
