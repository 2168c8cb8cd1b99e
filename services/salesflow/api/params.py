"""Query parameter types that take only what the OpenAPI document promises.

Pydantic's lax mode would read ``until=0`` (or ``2e-9``) as a Unix time; a date or date-time parameter
here takes ISO 8601 / RFC 3339 text only, so anything else is refused (422) rather than read as 1970.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BeforeValidator

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}.*")


def _iso_text(shape: re.Pattern[str], kind: str) -> Any:
    def check(value: Any) -> Any:
        if isinstance(value, (date, datetime)):
            return value
        if not isinstance(value, str) or not shape.fullmatch(value.strip()):
            raise ValueError(f"expected an ISO 8601 {kind}")
        return value

    return check


IsoDate = Annotated[date, BeforeValidator(_iso_text(_DATE, "date (YYYY-MM-DD)"))]
IsoDateTime = Annotated[datetime, BeforeValidator(_iso_text(_DATE_TIME, "date-time (RFC 3339)"))]
