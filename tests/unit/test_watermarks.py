from __future__ import annotations

from salesflow.processor.watermarks import ReplayWatermarks


def test_offsets_at_or_below_the_mark_are_replays() -> None:
    marks = ReplayWatermarks("g", "wm")
    assert not marks.is_replay("t", 0, 0)
    marks.advance("t", 0, 10)
    assert marks.is_replay("t", 0, 10) and marks.is_replay("t", 0, 3)
    assert not marks.is_replay("t", 0, 11) and not marks.is_replay("t", 1, 3)


def test_marks_never_move_back_and_only_moved_marks_are_written() -> None:
    marks = ReplayWatermarks("g", "wm")
    marks.advance("t", 0, 10)
    marks.advance("t", 0, 4)
    [record] = marks.pending_records()
    assert (record.topic, record.key, record.value) == ("wm", b"g|t|0", b"10")
    assert marks.pending_records() == []


def test_loading_takes_this_groups_latest_marks_and_ignores_others() -> None:
    marks = ReplayWatermarks("g", "wm")
    marks.load(
        [
            (b"g|a.b.v1|2", b"5"),
            (b"g|a.b.v1|2", b"9"),
            (b"other|a.b.v1|2", b"99"),
            (b"g|x|0", None),
            (b"g|broken", b"1"),
        ]
    )
    assert marks.mark("a.b.v1", 2) == 9 and marks.mark("x", 0) is None
    assert marks.pending_records() == []
    marks.advance("a.b.v1", 2, 12)
    marks.load([(b"g|a.b.v1|2", b"9")])  # a stale topic never moves a live mark back
    assert marks.mark("a.b.v1", 2) == 12
