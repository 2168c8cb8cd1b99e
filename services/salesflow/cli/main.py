"""``salesflow``: one CLI for running, operating and developing the pipeline."""

from __future__ import annotations

import typer

from salesflow.api.server import api
from salesflow.cli import pipeline
from salesflow.cli.config import install as install_config
from salesflow.cli.demo import demo, summary
from salesflow.cli.dev import dev_app
from salesflow.cli.dlq import dlq_app
from salesflow.cli.lag import lag
from salesflow.cli.produce import produce_app
from salesflow.cli.replay import replay_app
from salesflow.cli.slo import slo_app

app = typer.Typer(help="SalesFlow Events: CRM events on Kafka, processed by Faust, projected into Postgres.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
app.command()(pipeline.worker)
app.command()(pipeline.projection)
app.command()(pipeline.handlers)
app.command()(demo)
app.command()(summary)
app.add_typer(pipeline.topics_app, name="topics")
app.add_typer(pipeline.db_app, name="db")
app.add_typer(produce_app, name="produce")
app.add_typer(dev_app, name="dev")
app.add_typer(replay_app, name="replay")
app.add_typer(dlq_app, name="dlq")
app.command()(lag)
app.command()(api)
app.add_typer(slo_app, name="slo")
install_config(app)

if __name__ == "__main__":
    app()
