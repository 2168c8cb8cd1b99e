"""Query parameter types that take only what the OpenAPI document promises.

Pydantic's lax mode would read ``until=0`` as a Unix time; a date or date-time parameter here takes
ISO 8601 / RFC 3339 text only, so a number is refused (422) rather than silently read as 1970.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BeforeValidator

_NUMBER = re.compile(r"\s*[-+]?\d+(\.\d*)?\s*")


def _iso_text(kind: str) -> Any:
    def check(value: Any) -> Any:
        if isinstance(value, (int, float)) or (isinstance(value, str) and _NUMBER.fullmatch(value)):
            raise ValueError(f"expected an ISO 8601 {kind}, not a number")
        return value

    return check


IsoDate = Annotated[date, BeforeValidator(_iso_text("date (YYYY-MM-DD)"))]
IsoDateTime = Annotated[datetime, BeforeValidator(_iso_text("date-time (RFC 3339)"))]
