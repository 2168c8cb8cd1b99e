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


class InvalidToken(ApiError):
    """401: no usable credentials; ``WWW-Authenticate`` says so (RFC 6750 section 3)."""

    def __init__(self, detail: str, *, presented: bool = True) -> None:
        super().__init__(401, detail)
        # No error code when no token was sent at all (RFC 6750 section 3.1).
        self.challenge = 'Bearer error="invalid_token"' if presented else "Bearer"


class Forbidden(ApiError):
    """403: a valid caller without the scope or the tenant this needs."""

    def __init__(self, detail: str, *, scope: str | None = None) -> None:
        super().__init__(403, detail)
        self.challenge = f'Bearer error="insufficient_scope", scope="{scope}"' if scope else None
