"""One root exception; subclasses carry the data an operator needs (reason, event id, where it was)."""

from __future__ import annotations

from enum import StrEnum


class SalesflowError(Exception):
    """Root of every error this project raises on purpose."""


class DeadLetterReason(StrEnum):
    """Why a record could not be decoded or validated: a bounded set, used as a metric label."""

    EMPTY = "empty"
    TOO_LARGE = "too_large"
    INVALID_UTF8 = "invalid_utf8"
    NOT_JSON = "not_json"
    # The same key twice in one JSON object (or a ce_* attribute header twice): parsers keep one of
    # them silently, so an attacker could show one id or tenant to one reader and another to the next.
    DUPLICATE_KEY = "duplicate_key"
    NOT_AN_OBJECT = "not_an_object"
    INVALID_HEADERS = "invalid_headers"
    UNSUPPORTED_SPECVERSION = "unsupported_specversion"
    UNKNOWN_TYPE = "unknown_type"
    UNSUPPORTED_SCHEMA = "unsupported_schema"
    # A version this worker knows, but a handler of its type takes a version no upcaster chain reaches
    # from it (the handler is older than the record): kept to be redriven once the handler is updated.
    NO_UPCAST_PATH = "no_upcast_path"
    MISSING_FIELD = "missing_field"
    INVALID_FIELD = "invalid_field"
    # Not the input's fault: our own code raised where it must not. Dead-lettered (bytes kept, to be
    # redriven after a fix) so that no error escapes the Faust agent, which would ack the event.
    PROCESSING_ERROR = "processing_error"


class InvalidEvent(SalesflowError):
    """A record that is not a valid event; it goes to the dead-letter topic with this reason."""

    def __init__(self, reason: DeadLetterReason, detail: str, event_id: str | None = None) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail
        self.event_id = event_id


class TransientHandlerError(SalesflowError):
    """A handler error worth retrying (a dependency timed out or was unreachable)."""


class ConfigurationError(SalesflowError):
    """A setting is missing, contradicts another, or names a file that cannot be used."""


class SecretFileError(ConfigurationError):
    """A ``*_FILE`` secret could not be read; the message names the variable and path, never the value."""


class KafkaConnectError(SalesflowError):
    """No connection to the Kafka cluster; the message says where, over which listener and why."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason  # "authentication", "tls", "unreachable", "protocol"


class DatabaseConnectError(SalesflowError):
    """No connection to Postgres (TLS or authentication); the message says where and why."""


class ReplayError(SalesflowError):
    """A replay, offset reset or redrive that cannot be carried out as asked."""


class InvalidResetRequest(ReplayError):
    """The scope or target of an offset reset does not fit the group or the topics (bad input)."""


class GroupHasLiveMembers(ReplayError):
    """Offsets of a group are changed only while it has no live members (as Kafka's own tool insists)."""

    def __init__(self, group: str, state: str, members: int) -> None:
        super().__init__(
            f"group {group!r} has {members} live member(s) (state {state}): stop its consumers "
            "(for example the worker) and run again"
        )
        self.group = group
        self.state = state
        self.members = members
