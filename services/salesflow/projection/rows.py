"""Kafka records into table rows (pure: no I/O), one parsed item per record, ready for ``batch``.

The public face of the projection's reading; each part lives in a module of its own:

- ``items``: what a record becomes (``PendingRow``, ``OutcomeRows``, ``DeadLetterRow``, or a
  ``Rejection`` with its reason), and the facts' table columns and time fields;
- ``pending_reading``: a source record as its ``pending`` events row;
- ``outcome_reading``: an outcome record as its events row and facts (typed, with an exact fallback);
- ``dead_letter_reading``: a dead-letter record as its ``dead_letters`` row.

A record that cannot be read (malformed JSON, a missing key, a bad date or id, an unknown fact kind)
becomes a ``Rejection``: it is kept, never raised, so it cannot stop the records after it.
"""

from __future__ import annotations

from salesflow.projection.dead_letter_reading import claimed_tenant, dead_letter_row, dead_lettered_event_row
from salesflow.projection.items import (
    FACT_COLUMNS,
    FACT_TIMES,
    DeadLetterRow,
    Item,
    OutcomeRows,
    PendingRow,
    Rejection,
    RejectReason,
    Row,
)
from salesflow.projection.outcome_reading import fact_rows, outcome_rows, parse_outcome, parse_outcome_exact
from salesflow.projection.pending_reading import pending_row

__all__ = [
    "FACT_COLUMNS",
    "FACT_TIMES",
    "DeadLetterRow",
    "Item",
    "OutcomeRows",
    "PendingRow",
    "RejectReason",
    "Rejection",
    "Row",
    "claimed_tenant",
    "dead_letter_row",
    "dead_lettered_event_row",
    "fact_rows",
    "outcome_rows",
    "parse_outcome",
    "parse_outcome_exact",
    "pending_row",
]
