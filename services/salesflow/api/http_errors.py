"""The API's errors: each becomes a 4xx/5xx JSON body ``{"detail": "..."}`` that says what was wrong."""

from __future__ import annotations

from salesflow.errors import SalesflowError


class ApiError(SalesflowError):
    """An answer other than success, with its HTTP status and a message for the caller."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class NotFound(ApiError):
    """Missing, or another tenant's: the same answer, so a caller cannot probe for ids."""

    def __init__(self, what: str) -> None:
        super().__init__(404, f"{what} not found")


class Unavailable(ApiError):
    """A dependency (Postgres, Kafka) did not answer: try again later."""

    def __init__(self, dependency: str) -> None:
        super().__init__(503, f"{dependency} is unavailable, try again later")
