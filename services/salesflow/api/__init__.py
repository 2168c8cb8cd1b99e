"""The HTTP API (FastAPI): event status, replay and analytics, scoped to the caller's tenant.

``create_app(settings, api_settings)`` builds it; ``salesflow api`` serves it with uvicorn. Both names
are imported on first use, so the CLI (``salesflow.cli.api_command``) loads without FastAPI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from salesflow.api.api_settings import ApiSettings
    from salesflow.api.app import create_app

__all__ = ["ApiSettings", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from salesflow.api.app import create_app

        return create_app
    if name == "ApiSettings":
        from salesflow.api.api_settings import ApiSettings

        return ApiSettings
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
