"""Long-running services and their set-up: worker, projection, topics, migrations, handlers."""

from __future__ import annotations

import typer
from rich.table import Table

from salesflow.cli.common import console, run, settings

topics_app = typer.Typer(help="Kafka topics of the pipeline.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)


def worker() -> None:
    """Run the processor: the engine SALESFLOW_WORKER_ENGINE names (batch, librdkafka, the default; or
    faust) over the batch core. Logs: SALESFLOW_LOG_LEVEL, SALESFLOW_LOG_FORMAT (json or text)."""
    from salesflow import bootstrap

    bootstrap.run_worker(settings())


def projection() -> None:
    """Run the projection: statuses, facts and dead letters into Postgres."""
    from salesflow import bootstrap

    bootstrap.run_projection(settings())


def handlers() -> None:
    """Show which handlers run for each event type, where each comes from (built-in, a module of
    SALESFLOW_HANDLER_MODULES, a plugin package), what it is injected with and what a replay does."""
    from salesflow.cli.config import load_settings
    from salesflow.handlers import DEFAULT_REGISTRY
    from salesflow.handlers.plugins import load_handlers

    load_handlers(load_settings(), DEFAULT_REGISTRY)
    table = Table("event type", "handler (in order)", "from", "injected with", "on replay")
    for handler in DEFAULT_REGISTRY.all():
        injected = ", ".join(f"{param}: {dep}" for param, dep in handler.signature.params)
        table.add_row(handler.event_type.value, handler.name, handler.origin, injected, handler.on_replay)
    console.print(table)


@topics_app.command("create")
def topics_create(
    partitions: int | None = typer.Option(None, help="Partitions per topic (default: SALESFLOW_TOPIC_PARTITIONS)."),
    replication: int | None = typer.Option(
        None, help="Replication factor (default: SALESFLOW_TOPIC_REPLICATION_FACTOR)."
    ),
) -> None:
    """Create the pipeline's topics; existing topics are left as they are."""
    from salesflow.kafka_admin import create_topics

    plan = run(create_topics(settings(), partitions=partitions, replication=replication))
    for topic in plan.created:
        console.print(f"created  {topic}")
    for topic in plan.existing:
        console.print(f"exists   {topic}")


@topics_app.command("list")
def topics_list() -> None:
    """List the topic names for the configured prefix."""
    for topic in settings().topics.all:
        console.print(topic)


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head")) -> None:
    """Apply migrations up to REVISION (default: head)."""
    from salesflow.db import migrate

    migrate.upgrade(settings().database_url, revision)
    console.print(f"database at {revision}")


@db_app.command("downgrade")
def db_downgrade(revision: str = typer.Argument(...)) -> None:
    """Revert migrations down to REVISION."""
    from salesflow.db import migrate

    migrate.downgrade(settings().database_url, revision)
    console.print(f"database at {revision}")
