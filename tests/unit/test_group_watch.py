"""The fault suite's count of rebalances, from samples of a group (pure logic, no broker)."""

from __future__ import annotations

from salesflow.settings import Settings
from tests.faults.group_watch import Assignment, GroupWatch, Sample

A: Assignment = {"w-0": frozenset({("t", 0)}), "w-1": frozenset({("t", 1)})}
B: Assignment = {"w-1": frozenset({("t", 0), ("t", 1)})}


def _watch(*samples: tuple[str, Assignment, str]) -> GroupWatch:
    watch = GroupWatch(Settings(), "g")
    watch.samples = [
        Sample(float(n), state, assignment, frozenset({m})) for n, (state, assignment, m) in enumerate(samples)
    ]
    return watch


def test_a_static_member_replacing_itself_is_no_rebalance() -> None:
    watch = _watch(("STABLE", A, "m1"), ("STABLE", A, "m2"), ("STABLE", A, "m3"))
    assert watch.rebalances_since(0, A) == 0


def test_each_episode_counts_once() -> None:
    watch = _watch(
        ("STABLE", A, "m"),
        ("PREPARING_REBALANCE", A, "m"),
        ("COMPLETING_REBALANCE", {}, "m"),
        ("STABLE", B, "m"),  # first: the member left and its partitions moved
        ("STABLE", B, "m"),
        ("STABLE", A, "m"),  # second: a member joined, caught only by the moved partitions
        ("PREPARING_REBALANCE", A, "m"),  # third: back to the same assignment
        ("STABLE", A, "m"),
    )
    assert watch.rebalances_since(0, A) == 3
    assert watch.rebalances_since(5, B) == 2
