"""Which events can skip the SDK: a cheap look at the decoded event before any span is made.

With a parent-based sampler (the SDK's default), an event whose producer did not sample its trace is
not sampled by the worker either, and one without a producer context goes with its batch's span
(sampled at the configured ratio). Such an event is processed exactly as with tracing off: this is
what keeps tracing at a 1% ratio cheap (``bench.tracing``). Anything this cannot tell for sure (a
record-level ``traceparent`` header, a context that is not a plain well-formed version-00 one) goes
the traced way, where it is validated and, if malformed, counted. Byte operations only, no parse.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from salesflow.domain.records import RecordIn

_HEX = b"0123456789abcdef"
_ZERO_TRACE = b"0" * 32
_ZERO_SPAN = b"0" * 16
_ODD = frozenset(b"13579bdf")  # a last flags digit with the "sampled" bit set


def skips_tracing(record: RecordIn, extensions: Mapping[str, Any], batch_sampled: bool) -> bool:
    """Whether the event of ``record`` (its decoded extension attributes: either content mode) will have
    no span, so it can be processed untraced."""
    for name, _ in record.headers:
        if name == "traceparent":
            return False  # a replay's or a redrive's own context: the traced way decides
    traceparent = extensions.get("traceparent") if extensions else None
    if traceparent is None:
        return not batch_sampled  # no producer context: the event goes with its batch
    return isinstance(traceparent, str) and unsampled(traceparent.encode())


def unsampled(traceparent: bytes) -> bool:
    """A well-formed version-00 ``traceparent`` whose "sampled" flag is off (byte operations in C: no
    regular expression, no parse). Anything else is False: the traced way validates it."""
    if len(traceparent) != 55 or traceparent[:3] != b"00-" or traceparent.translate(None, _HEX) != b"---":
        return False
    if traceparent[35] != 45 or traceparent[52] != 45:  # the dashes in their places ("-" is 45)
        return False
    if traceparent[3:35] == _ZERO_TRACE or traceparent[36:52] == _ZERO_SPAN:
        return False
    return traceparent[54] not in _ODD
