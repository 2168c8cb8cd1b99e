"""The HTTP API (FastAPI): event status, replay and analytics, scoped to the caller's tenant.

``create_app(settings, api_settings)`` builds it; ``salesflow api`` serves it with uvicorn.
"""

from salesflow.api.app import create_app
from salesflow.api.settings import ApiSettings

__all__ = ["ApiSettings", "create_app"]
