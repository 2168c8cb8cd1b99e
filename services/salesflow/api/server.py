"""``salesflow api``: serve the HTTP API with uvicorn, or print its OpenAPI document."""

from __future__ import annotations

import sys

import orjson
import typer


def api(
    host: str | None = typer.Option(None, help="Address to listen on (default: SALESFLOW_API_HOST, 127.0.0.1)."),
    port: int | None = typer.Option(None, help="Port (default: SALESFLOW_API_PORT, 8080)."),
    openapi: bool = typer.Option(False, "--openapi", help="Print the OpenAPI document and exit."),
) -> None:
    """Serve the HTTP API: event status, replay, analytics, /healthz, /readyz, /metrics."""
    import uvicorn

    from salesflow.api.api_settings import ApiSettings
    from salesflow.api.app import create_app
    from salesflow.settings import Settings

    api_settings = ApiSettings()
    app = create_app(Settings(), api_settings)
    if openapi:
        sys.stdout.write(orjson.dumps(app.openapi(), option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    uvicorn.run(
        app,
        host=host or api_settings.host,
        port=port if port is not None else api_settings.port,
        log_level="info",
        access_log=False,
    )
