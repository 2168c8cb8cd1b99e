"""The commit rule, without Kafka: an offset is committable only after its records and every earlier
record's on the partition are acknowledged and the watermark covering it is written."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from salesflow.processor.commits import CommitLedger

P = ("src", 0)


def test_nothing_is_committable_before_the_watermark_is_written() -> None:
    ledger = CommitLedger()
    ticket = ledger.read("src", 0, 7, outputs=2)
    ledger.delivered(ticket)
    assert ledger.settled() == {}  # one record still unacknowledged
    ledger.delivered(ticket)
    assert ledger.settled() == {P: 7}
    assert ledger.take_committable() == {}  # acknowledged, but the mark is not written yet
    ledger.mark_written("src", 0, 7)
    assert ledger.take_committable() == {P: 8}  # Kafka's convention: the next offset to read
    assert ledger.take_committable() == {}


def test_acks_out_of_order_settle_only_the_prefix_in_read_order() -> None:
    ledger = CommitLedger()
    first, second, third = (ledger.read("src", 0, offset, outputs=1) for offset in (10, 11, 12))
    ledger.delivered(third)
    ledger.delivered(second)
    assert ledger.settled() == {}  # 10 is still in flight: nothing after it may move
    ledger.delivered(first)
    assert ledger.settled() == {P: 12}
    assert ledger.in_flight() == 0


def test_partitions_settle_independently() -> None:
    ledger = CommitLedger()
    slow = ledger.read("src", 0, 1, outputs=1)
    fast = ledger.read("src", 1, 1, outputs=1)
    ledger.delivered(fast)
    assert ledger.settled() == {("src", 1): 1}
    ledger.delivered(slow)
    assert ledger.settled() == {P: 1}


def test_a_record_with_no_output_settles_with_the_records_before_it() -> None:
    ledger = CommitLedger()
    before = ledger.read("src", 0, 1, outputs=1)
    ledger.read("src", 0, 2, outputs=0)
    assert ledger.settled() == {}
    ledger.delivered(before)
    assert ledger.settled() == {P: 2}


def test_a_failure_is_kept_first_and_a_mark_never_moves_the_commit_back() -> None:
    ledger = CommitLedger()
    ledger.failed(RuntimeError("first"))
    ledger.failed(RuntimeError("second"))
    assert str(ledger.failure) == "first"
    ledger.mark_written("src", 0, 9)
    ledger.mark_written("src", 0, 4)
    assert ledger.take_committable() == {P: 10}


def test_forgotten_partitions_free_nothing() -> None:
    ledger = CommitLedger()
    ticket = ledger.read("src", 0, 3, outputs=1)
    ledger.mark_written("src", 0, 2)
    ledger.forget([P])
    ledger.delivered(ticket)
    assert ledger.settled() == {} and ledger.take_committable() == {} and ledger.in_flight() == 0


@given(
    outputs=st.lists(st.integers(0, 3), min_size=1, max_size=30),
    order=st.randoms(use_true_random=False),
)
def test_the_settled_offset_is_always_the_longest_fully_acknowledged_prefix(
    outputs: list[int], order: random.Random
) -> None:
    ledger = CommitLedger()
    tickets = [ledger.read("src", 0, offset, n) for offset, n in enumerate(outputs)]
    acks = [t for t in tickets for _ in range(t.pending)]
    order.shuffle(acks)
    done = [0] * len(outputs)
    highest = ledger.settled().get(P, -1)
    for ticket in [None, *acks]:
        if ticket is not None:
            ledger.delivered(ticket)
            done[ticket.offset] += 1
        highest = ledger.settled().get(P, highest)
        # The last offset before the first record with an unacknowledged output.
        prefix = next((i for i, n in enumerate(outputs) if done[i] < n), len(outputs)) - 1
        assert highest == prefix
    assert ledger.in_flight() == 0
