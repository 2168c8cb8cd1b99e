"""``salesflow api``: serve the HTTP API with uvicorn, or print its OpenAPI document."""

from __future__ import annotations

import typer


def api(
    host: str | None = typer.Option(None, help="Address to listen on (default: SALESFLOW_API_HOST, 127.0.0.1)."),
    port: int | None = typer.Option(None, help="Port (default: SALESFLOW_API_PORT, 8080)."),
    openapi: bool = typer.Option(False, "--openapi", help="Print the OpenAPI document and exit."),
    insecure_dev: bool = typer.Option(
        False, "--insecure-dev", help="Start even with no authentication configured (every /api call is refused)."
    ),
) -> None:
    """Serve the HTTP API: event status, replay, analytics, /healthz, /readyz, /metrics."""
    from salesflow import bootstrap

    try:
        bootstrap.run_api(host=host, port=port, openapi=openapi, insecure_dev=insecure_dev)
    except bootstrap.NoApiAuth as exc:
        # Refused before listening: an API that answers every call with 401 looks up, but serves no one.
        typer.echo(f"salesflow api: {exc}", err=True)
        raise typer.Exit(2) from None
