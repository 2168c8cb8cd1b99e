"""The failure policy, written once: what is retried, with which backoff, what is dead-lettered or set
aside, when an offset is committed, and how a stop request ends a retry loop.

- **Handlers** (``processor.dispatch``): an error in ``TRANSIENT_ERRORS`` is retried with capped
  exponential backoff and full jitter (``RetryPolicy``, from ``SALESFLOW_HANDLER_*`` settings), up to
  ``max_attempts``; any other exception is permanent. A handler still failing makes the event
  ``failed`` with its error kept; the other handlers' outputs still count; the stream goes on.
- **Bad input** (``processor``): a record that does not decode or validate goes to the dead-letter
  topic with its original key, bytes and headers and a reason; a bug of ours raised while processing
  is dead-lettered as ``processing_error``. Nothing raises out of the processor for one record.
- **Offsets** (the worker's engines): a record's offset becomes committable only once every record it
  produced is acknowledged by the broker and its partition's replay watermark is written, in read
  order per partition. A delivery that fails for good stops the worker instead of committing.
- **Projection**: an unavailable database is retried with the same backoff rule until it comes back or
  a stop is requested (``sleep_unless_stopped``); offsets are committed only after the batch is written.
- **Stop requests**: every retry loop waits through ``sleep_unless_stopped``, so SIGTERM ends it.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass

from salesflow.errors import TransientHandlerError

# Handler errors worth another attempt: a dependency timed out or was unreachable.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (TransientHandlerError, TimeoutError, ConnectionError)


@dataclass(frozen=True)
class RetryPolicy:
    """Capped exponential backoff with full jitter, for at most ``max_attempts`` attempts."""

    max_attempts: int = 3
    backoff_seconds: float = 0.1
    backoff_max_seconds: float = 2.0

    def delay(self, attempt: int) -> float:
        """Full jitter: a random wait up to the capped exponential backoff for this attempt."""
        return random.uniform(0, min(self.backoff_max_seconds, self.backoff_seconds * 2 ** (attempt - 1)))

    def gives_up_after(self, attempt: int) -> bool:
        return attempt >= self.max_attempts


async def sleep_unless_stopped(delay: float, stopping: asyncio.Event) -> bool:
    """Wait ``delay`` seconds, or less if a stop is requested; True when the caller should stop."""
    try:
        await asyncio.wait_for(stopping.wait(), timeout=delay)
    except TimeoutError:
        return False
    return True
