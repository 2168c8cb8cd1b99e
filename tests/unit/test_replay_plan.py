"""The offset-reset plan and its inputs, without Kafka: Kafka's rules for each target."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from aiokafka.structs import TopicPartition

from salesflow.errors import InvalidResetRequest
from salesflow.replay import targets
from salesflow.replay.plan import PartitionState, compute_plan

T0 = TopicPartition("t", 0)
T1 = TopicPartition("t", 1)
STATES = {
    T0: PartitionState(log_start=2, log_end=10, committed=7, at_time=5),
    T1: PartitionState(log_start=0, log_end=4, committed=None, at_time=None),
}


def plan(
    target: targets.ResetTarget, states: dict[TopicPartition, PartitionState] = STATES
) -> dict[TopicPartition, int]:
    return compute_plan("g", target, states).offsets


def test_earliest_latest_and_current() -> None:
    assert plan(targets.to_earliest()) == {T0: 2, T1: 0}
    assert plan(targets.to_latest()) == {T0: 10, T1: 4}
    assert plan(targets.to_current()) == {T0: 7, T1: 4}  # no committed offset: the log end, as Kafka


def test_to_offset_is_clamped_into_the_log_with_a_warning() -> None:
    result = compute_plan("g", targets.to_offset(1), {T0: STATES[T0]})
    assert result.offsets == {T0: 2}
    assert result.warnings == ["new offset (1) is lower than the earliest offset of t-0: set to 2"]
    assert plan(targets.to_offset(99)) == {T0: 10, T1: 4}


def test_shift_by_needs_a_committed_offset() -> None:
    assert plan(targets.shift_by(-3), {T0: STATES[T0]}) == {T0: 4}
    assert plan(targets.shift_by(-30), {T0: STATES[T0]}) == {T0: 2}
    with pytest.raises(InvalidResetRequest, match="no committed offset"):
        plan(targets.shift_by(-1))


def test_time_targets_fall_back_to_the_log_end_where_no_record_is_that_recent() -> None:
    result = compute_plan("g", targets.by_duration("PT1H"), STATES)
    assert result.offsets == {T0: 5, T1: 4}
    assert len(result.warnings) == 1 and "t-1" in result.warnings[0]


def test_plan_rows_count_what_is_reprocessed_and_skipped() -> None:
    back = compute_plan("g", targets.to_earliest(), STATES)
    assert [(r.to_reprocess, r.to_skip) for r in back.rows] == [(5, 0), (None, None)]
    assert back.total_to_reprocess == 5
    ahead = compute_plan("g", targets.to_latest(), {T0: STATES[T0]})
    assert (ahead.rows[0].to_reprocess, ahead.rows[0].to_skip) == (0, 3)


def test_topic_scopes() -> None:
    assert targets.TopicScope.parse("a.b") == targets.TopicScope("a.b")
    assert targets.TopicScope.parse("a.b:2,0") == targets.TopicScope("a.b", (0, 2))
    for bad in (":1", "a:x", "a:", "a:-1"):
        with pytest.raises(InvalidResetRequest):
            targets.TopicScope.parse(bad)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("PT1H30M", timedelta(hours=1, minutes=30)),
        ("P1DT2H", timedelta(days=1, hours=2)),
        ("PT0.5S", timedelta(seconds=0.5)),
        ("-PT6H", timedelta(hours=-6)),
        ("pt15m", timedelta(minutes=15)),
    ],
)
def test_durations_in_javas_form(text: str, expected: timedelta) -> None:
    assert targets.parse_duration(text) == expected


@pytest.mark.parametrize("text", ["1h", "P", "PT", "P1H", "PT1D", ""])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(InvalidResetRequest):
        targets.parse_duration(text)


def test_by_duration_resolves_against_now() -> None:
    now = datetime(2026, 11, 24, 12, tzinfo=UTC)
    target = targets.by_duration("PT2H", now=now)
    assert target.timestamp_ms == int(datetime(2026, 11, 24, 10, tzinfo=UTC).timestamp() * 1000)


def test_datetimes_with_and_without_a_zone() -> None:
    utc = targets.parse_datetime_ms("2026-11-24T12:00:00.000Z")
    assert utc == int(datetime(2026, 11, 24, 12, tzinfo=UTC).timestamp() * 1000)
    assert targets.parse_datetime_ms("2026-11-24T13:00:00.000+01:00") == utc
    with pytest.raises(InvalidResetRequest):
        targets.parse_datetime_ms("yesterday")


def test_reset_files_in_kafkas_export_format() -> None:
    assert targets.parse_reset_csv("t,0,5\n\nt,1,7\n", "g") == {T0: 5, T1: 7}
    assert targets.parse_reset_csv("g,t,0,5\nother,t,1,7\n", "g") == {T0: 5}
    with pytest.raises(InvalidResetRequest, match="line 1"):
        targets.parse_reset_csv("t,zero,5\n", "g")
    with pytest.raises(InvalidResetRequest, match="no offsets"):
        targets.parse_reset_csv("other,t,1,7\n", "g")


# What Kafka 4.3.1's `kafka-consumer-groups --reset-offsets --to-datetime` takes (each checked against the
# tool's dry run): the milliseconds are required, the zone is optional and UTC without one.
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-24T12:00:00.000", datetime(2026, 11, 24, 12, tzinfo=UTC)),
        ("2026-11-24T12:00:00.000Z", datetime(2026, 11, 24, 12, tzinfo=UTC)),
        ("2026-11-24T13:00:00.000+01:00", datetime(2026, 11, 24, 12, tzinfo=UTC)),
        ("2026-11-24T13:00:00.000+0100", datetime(2026, 11, 24, 12, tzinfo=UTC)),
        ("2026-11-24T13:00:00.000+01", datetime(2026, 11, 24, 12, tzinfo=UTC)),
        ("2026-11-24T07:00:00.000-05:00", datetime(2026, 11, 24, 12, tzinfo=UTC)),
        ("2026-11-24T12:00:00.5", datetime(2026, 11, 24, 12, 0, 0, 500_000, tzinfo=UTC)),
        ("2026-11-24T12:00:00.12", datetime(2026, 11, 24, 12, 0, 0, 120_000, tzinfo=UTC)),
    ],
)
def test_datetimes_kafka_takes(text: str, expected: datetime) -> None:
    assert targets.parse_datetime_ms(text) == int(expected.timestamp() * 1000)


# What the same tool refuses, and how it says so.
@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("2026-11-24", "does not contain a 'T' according to ISO8601 format"),
        ("yesterday", "does not contain a 'T'"),
        ("2026-11-24T12:00", "unparseable date"),
        ("2026-11-24T12:00:00", "unparseable date"),
        ("2026-11-24T12:00:00Z", "unparseable date"),
        ("2026-11-24T12:00:00+01:00", "unparseable date"),
        ("2026-11-24T12:00:00.1234", "unparseable date"),
        ("2026-13-24T12:00:00.000", "unparseable date"),
        ("2026-11-24T12:00:00.000 UTC", "unparseable date"),
    ],
)
def test_datetimes_kafka_refuses_are_refused(text: str, says: str) -> None:
    with pytest.raises(InvalidResetRequest, match=says) as caught:
        targets.to_datetime(text)
    assert "YYYY-MM-DDTHH:mm:SS.sss" in str(caught.value)


def test_a_negative_offset_in_a_reset_file_is_refused_not_clamped() -> None:
    # Kafka's tool: "Invalid negative offset", exit 1 (it clamps only offsets outside the log's range).
    with pytest.raises(InvalidResetRequest, match="line 2: invalid negative offset -5 for t-1"):
        targets.parse_reset_csv("t,0,5\nt,1,-5\n", "g")
    with pytest.raises(InvalidResetRequest, match="line 1: invalid negative offset -1 for t-0"):
        targets.parse_reset_csv("g,t,0,-1\n", "g")
    with pytest.raises(InvalidResetRequest, match="invalid negative partition -1"):
        targets.parse_reset_csv("t,-1,0\n", "g")
    assert targets.parse_reset_csv("other,t,0,-1\ng,t,0,0\n", "g") == {T0: 0}  # another group's line is not read


def test_a_negative_offset_never_reaches_a_plan() -> None:
    target = targets.ResetTarget("from-file", "f.csv", requested={T0: -1})
    with pytest.raises(InvalidResetRequest, match="invalid negative offset"):
        compute_plan("g", target, {T0: PartitionState(log_start=0, log_end=10, committed=3)})
