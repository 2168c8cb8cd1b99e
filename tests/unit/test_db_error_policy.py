"""The projection's side of the failure policy: which database errors are retried (the database is
away), which are data (split the batch, reject the record) and which stop the projection."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy.exc import DBAPIError, OperationalError

from salesflow.errors import DatabaseConnectError
from salesflow.failure_policy import classify_db_error, db_retry_policy
from salesflow.settings import Settings


def wrapped(error: BaseException) -> BaseException:
    """As SQLAlchemy's asyncpg adapter raises it: a DBAPIError whose ``orig`` is caused by the driver's."""
    adapter = Exception("adapter error")
    adapter.__cause__ = error
    return DBAPIError("SELECT 1", None, adapter)


TRANSIENT = [
    ConnectionRefusedError(111, "Connection refused"),
    ConnectionResetError("connection lost"),
    OSError("network unreachable"),
    TimeoutError(),
    asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    asyncpg.TooManyConnectionsError("sorry, too many clients already"),
    asyncpg.AdminShutdownError("terminating connection due to administrator command"),
    asyncpg.CannotConnectNowError("the database system is starting up"),
    asyncpg.SerializationError("could not serialize access"),
    asyncpg.DeadlockDetectedError("deadlock detected"),
    OperationalError("connect", None, ConnectionRefusedError(111, "refused")),
]
DATA = [
    asyncpg.CharacterNotInRepertoireError('invalid byte sequence for encoding "UTF8": 0x00'),
    asyncpg.UntranslatableCharacterError("unsupported Unicode escape sequence"),
    asyncpg.NumericValueOutOfRangeError("numeric field overflow"),
    asyncpg.DatetimeFieldOverflowError("date/time field value out of range"),
    asyncpg.NotNullViolationError("null value in column"),
    asyncpg.CheckViolationError("violates check constraint"),
    OverflowError("value out of int32 range"),
    OverflowError("date value out of range"),
    TypeError("'str' object cannot be interpreted as an integer"),
]
FATAL = [
    asyncpg.UndefinedTableError('relation "rejected_records" does not exist'),
    asyncpg.InsufficientPrivilegeError("permission denied"),
    DatabaseConnectError("cannot connect: password authentication failed"),
    KeyError("a bug of ours"),
]


@pytest.mark.parametrize("error", TRANSIENT, ids=repr)
def test_an_unavailable_database_is_retried(error: BaseException) -> None:
    assert classify_db_error(error) == "transient"
    assert classify_db_error(wrapped(error)) == "transient"


@pytest.mark.parametrize("error", DATA, ids=repr)
def test_a_value_the_database_refuses_is_data(error: BaseException) -> None:
    assert classify_db_error(error) == "data"
    assert classify_db_error(wrapped(error)) == "data"


@pytest.mark.parametrize("error", FATAL, ids=repr)
def test_anything_else_stops_the_projection(error: BaseException) -> None:
    assert classify_db_error(error) == "fatal"


def test_the_retry_waits_come_from_the_settings_and_stay_capped() -> None:
    policy = db_retry_policy(Settings(db_retry_backoff_seconds=0.2, db_retry_backoff_max_seconds=1.5))
    assert (policy.backoff_seconds, policy.backoff_max_seconds) == (0.2, 1.5)
    assert not policy.gives_up_after(10_000)
    assert all(0 <= policy.delay(attempt) <= 1.5 for attempt in [*range(1, 31), 5_000])  # no overflow
