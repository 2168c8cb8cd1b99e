"""``salesflow dev ...``: manage the local Kafka + Postgres dev stack."""

from __future__ import annotations

import shlex

import typer

dev_app = typer.Typer(
    help="Local dev stack: a real single-node Kafka (KRaft) and a throwaway Postgres.",
    no_args_is_help=True,
)


def _echo_err(msg: str) -> None:
    typer.echo(msg, err=True)


def _fail(exc: Exception) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(code=1)


@dev_app.command()
def up(
    tracing: bool = typer.Option(False, "--tracing", help="Also a local Jaeger (built once from its Go module)."),
) -> None:
    """Start Kafka and Postgres (fetching/installing what is missing); no-op when running."""
    from salesflow.devstack import stack

    try:
        stack.up(echo=_echo_err, tracing=tracing)
    except Exception as exc:  # show the reason (log tail) without a traceback
        raise _fail(exc) from exc
    typer.echo(f'# run: eval "$(salesflow dev env{" --tracing" if tracing else ""})"', err=True)
    if tracing:
        typer.echo(f"# traces: {stack.jaeger_config().ui_url}", err=True)


@dev_app.command()
def down() -> None:
    """Stop Kafka and Postgres; their data is kept."""
    from salesflow.devstack import stack

    try:
        stack.down(echo=_echo_err)
    except Exception as exc:
        raise _fail(exc) from exc


@dev_app.command()
def env(
    tracing: bool = typer.Option(False, "--tracing", help="Also OTEL_* exports for the local Jaeger."),
) -> None:
    """Print ``export NAME=value`` lines; use as ``eval "$(salesflow dev env)"``."""
    from salesflow.devstack import stack

    for name, value in stack.env_exports(tracing=tracing).items():
        typer.echo(f"export {name}={shlex.quote(value)}")


@dev_app.command()
def status() -> None:
    """Show whether Kafka and Postgres are running; exit code 1 when either is not."""
    from salesflow.devstack import stack

    st = stack.status()
    for line in st.lines():
        typer.echo(line)
    if not (st.kafka_running and st.postgres_running):
        raise typer.Exit(code=1)


@dev_app.command()
def reset(
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Stop the stack and delete its data (the Kafka jar cache is kept)."""
    from salesflow.devstack import stack

    if not yes:
        typer.confirm(f"Delete all dev stack data under {stack.stack_dir()}?", abort=True)
    try:
        stack.reset(echo=_echo_err)
    except Exception as exc:
        raise _fail(exc) from exc


@dev_app.command()
def trace(trace_id: str = typer.Argument(..., help="The 32-hex-digit trace id (log lines carry it).")) -> None:
    """Print one trace from the local Jaeger (``dev up --tracing``) as a tree of spans."""
    from salesflow.devstack import stack
    from salesflow.tracing.render import fetch_trace, render

    found = fetch_trace(stack.jaeger_config().ui_url, trace_id)
    if found is None:
        typer.echo(f"the local Jaeger has no trace {trace_id} (is it up? `salesflow dev up --tracing`)", err=True)
        raise typer.Exit(code=1)
    typer.echo(render(found))
