"""``salesflow``: one CLI for running, operating and developing the pipeline."""

from __future__ import annotations

import os
import sys

import typer

from salesflow.cli import services
from salesflow.cli.api_command import api
from salesflow.cli.common import err_console
from salesflow.cli.config import install as install_config
from salesflow.cli.demo import demo, summary
from salesflow.cli.dev import dev_app
from salesflow.cli.dlq import dlq_app
from salesflow.cli.lag import lag
from salesflow.cli.outbox import outbox_app
from salesflow.cli.produce import produce_app
from salesflow.cli.replay import replay_app
from salesflow.cli.schemas import schemas_app
from salesflow.cli.slo import slo_app
from salesflow.errors import ConfigurationError

app = typer.Typer(
    help="SalesFlow Events: CRM events on Kafka, processed by handlers in a worker, projected into Postgres.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command()(services.worker)
app.command()(services.projection)
app.command()(services.handlers)
app.command()(demo)
app.command()(summary)
app.add_typer(services.topics_app, name="topics")
app.add_typer(services.db_app, name="db")
app.add_typer(produce_app, name="produce")
app.add_typer(dev_app, name="dev")
app.add_typer(replay_app, name="replay")
app.add_typer(dlq_app, name="dlq")
app.command()(lag)
app.command()(api)
app.add_typer(slo_app, name="slo")
app.add_typer(outbox_app, name="outbox")
app.add_typer(schemas_app, name="schemas")
install_config(app)


def main() -> None:
    """The ``salesflow`` entry point: a service that cannot be reached ends any command with one line
    naming the setting to check, not a traceback."""
    try:
        app()
    except Exception as exc:
        if _kafka_unreachable(exc):
            err_console.print(
                f"error: cannot reach Kafka at {_setting('SALESFLOW_KAFKA_BOOTSTRAP_SERVERS')} "
                f"(SALESFLOW_KAFKA_BOOTSTRAP_SERVERS): {exc}",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
            raise SystemExit(1) from None
        if isinstance(exc, ConfigurationError):  # e.g. a handler asking for an unknown dependency
            err_console.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
            raise SystemExit(2) from None
        if not _postgres_unreachable(exc):
            raise
        err_console.print(
            f"error: cannot reach Postgres (SALESFLOW_DATABASE_URL): {type(exc).__name__}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        raise SystemExit(1) from None


# The client libraries are imported only by the commands that use them (``salesflow --help`` starts
# without them): an error of a library that was never imported cannot have been raised, so these
# look the error types up where they are already loaded instead of importing them.
def _kafka_unreachable(exc: Exception) -> bool:
    errors = sys.modules.get("aiokafka.errors")
    return errors is not None and isinstance(exc, errors.KafkaConnectionError)


def _postgres_unreachable(exc: Exception) -> bool:
    if isinstance(exc, ConnectionRefusedError):
        return True
    sqlalchemy_exc = sys.modules.get("sqlalchemy.exc")
    return (
        sqlalchemy_exc is not None
        and isinstance(exc, sqlalchemy_exc.DBAPIError)
        and isinstance(exc.orig, OSError | ConnectionError)
    )


def _setting(name: str) -> str:
    return os.environ.get(name, "the default address")


if __name__ == "__main__":
    main()
