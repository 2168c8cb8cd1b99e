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
- **Projection** (``projection.service``): database errors are classified by ``classify_db_error``.
  An unavailable database (connection refused or lost, too many connections, admin shutdown, a
  serialization failure or deadlock) is retried with the settings' backoff (``db_retry_policy``)
  until it comes back or a stop is requested. A data error (a value Postgres or the driver refuses, a
  malformed outcome) is not retried: the batch is split until the offending records are found, the
  rest is written, and each bad record is kept in ``rejected_records`` with its reason. Any other
  error (a schema not migrated, a bug) stops the projection. Offsets are committed only once every
  record of the batch is written or rejected.
- **Outbox relay** (``outbox.relay``): database errors are classified by ``classify_db_error`` too.
  An unavailable database is retried with ``db_retry_policy`` until it comes back or a stop is
  requested; anything else (a table not migrated, a privilege revoked) ends the relay with one line
  naming the cause. Kafka errors are classified by ``classify_kafka_error``: a batch the broker did
  not acknowledge keeps its rows, which a fresh producer sends again after the same backoff; a topic
  that does not exist holds back that topic's rows only (they stay in the table, checked again now
  and then, named in the log and counted); an authorization or authentication error ends the relay.
- **Stop requests**: every retry loop waits through ``sleep_unless_stopped``, so SIGTERM ends it.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import asyncpg

from salesflow.errors import TransientHandlerError

if TYPE_CHECKING:
    from salesflow.settings import Settings

# On a stop request, how long an engine waits for what is in flight to be delivered and committed.
DRAIN_SECONDS = 10.0

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
        exponent = min(max(attempt, 1) - 1, 60)  # a long outage: no float overflow past the cap
        return random.uniform(0, min(self.backoff_max_seconds, self.backoff_seconds * 2**exponent))

    def gives_up_after(self, attempt: int) -> bool:
        return attempt >= self.max_attempts


async def sleep_unless_stopped(delay: float, stopping: asyncio.Event) -> bool:
    """Wait ``delay`` seconds, or less if a stop is requested; True when the caller should stop."""
    try:
        await asyncio.wait_for(stopping.wait(), timeout=delay)
    except TimeoutError:
        return False
    return True


DbErrorKind = Literal["transient", "data", "fatal"]

# SQLSTATE classes and codes of an unavailable database (retry): connection exceptions, insufficient
# resources (too many connections), operator intervention (admin/crash shutdown, cannot connect now),
# and transaction rollbacks (serialization failure, deadlock), which succeed when tried again.
TRANSIENT_SQLSTATE_CLASSES = ("08", "53", "40")
TRANSIENT_SQLSTATES = frozenset({"57P01", "57P02", "57P03"})
TRANSIENT_DB_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # ConnectionError and socket errors among them
    TimeoutError,
    asyncpg.InterfaceError,  # the connection was closed or is unusable
)
# Errors of one value (retrying cannot help): Postgres's data exceptions (22xxx: a NUL in text,
# numeric overflow) and integrity violations (23xxx: a missing required value), and what asyncpg
# raises while encoding a value (an int beyond int32, a date out of range, a wrong type).
DATA_SQLSTATE_CLASSES = ("22", "23")
DATA_ERRORS: tuple[type[BaseException], ...] = (OverflowError, ValueError, TypeError, UnicodeError)


def classify_db_error(exc: BaseException) -> DbErrorKind:
    """``transient`` (retry the same batch), ``data`` (split it, reject the bad records) or ``fatal``.

    SQLAlchemy and its asyncpg adapter wrap the driver's error: the chain (``orig``, ``__cause__``)
    is searched for the first error that says what happened."""
    for error in _chain(exc):
        state = str(getattr(error, "sqlstate", "") or "")
        if isinstance(error, asyncpg.PostgresError) and state:
            if state[:2] in TRANSIENT_SQLSTATE_CLASSES or state in TRANSIENT_SQLSTATES:
                return "transient"
            return "data" if state[:2] in DATA_SQLSTATE_CLASSES else "fatal"
        if isinstance(error, TRANSIENT_DB_ERRORS):
            return "transient"
        if isinstance(error, DATA_ERRORS):
            return "data"
    return "fatal"


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    pending: list[BaseException | None] = [exc]
    while pending:
        error = pending.pop(0)
        if error is None or any(error is s for s in seen) or len(seen) > 10:
            continue
        seen.append(error)
        orig = getattr(error, "orig", None)
        pending += [orig if isinstance(orig, BaseException) else None, error.__cause__, error.__context__]
    return seen


def db_retry_policy(settings: Settings) -> RetryPolicy:
    """The wait between attempts while the database is away (the projection's and the outbox
    relay's): ``SALESFLOW_DB_RETRY_BACKOFF_SECONDS``, capped at ``..._MAX_SECONDS``, with no limit on
    attempts (a stop request ends it)."""
    return RetryPolicy(
        max_attempts=2**31,
        backoff_seconds=max(settings.db_retry_backoff_seconds, 0.05),
        backoff_max_seconds=max(settings.db_retry_backoff_max_seconds, settings.db_retry_backoff_seconds),
    )


KafkaErrorKind = Literal["transient", "unknown_topic", "fatal"]

# librdkafka error codes (``confluent_kafka.KafkaError``; as ints, so that this module loads no
# Kafka client). A topic the cluster does not have: the local and the broker's code.
UNKNOWN_TOPIC_CODES = frozenset({-188, 3})  # _UNKNOWN_TOPIC, UNKNOWN_TOPIC_OR_PART
# Refused for good until an operator acts: topic or cluster authorization, authentication (SASL or
# the local SSL/SASL handshake), and a record larger than the broker accepts.
FATAL_KAFKA_CODES = frozenset({29, 31, 58, -169, 10})


def classify_kafka_error(code: int) -> KafkaErrorKind:
    """``unknown_topic`` (the topic does not exist: hold its records back), ``fatal`` (no retry can
    succeed: stop with the reason) or ``transient`` (a timeout, a broker away, a producer that
    failed for good on a gap: send the records again from a fresh producer)."""
    if code in UNKNOWN_TOPIC_CODES:
        return "unknown_topic"
    return "fatal" if code in FATAL_KAFKA_CODES else "transient"
