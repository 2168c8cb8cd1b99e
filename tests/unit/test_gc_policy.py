"""The collector policy the composition root applies to the batch services."""

from __future__ import annotations

import gc

from salesflow.gc_policy import YOUNG_THRESHOLD, tune_for_batches


def test_startup_objects_are_frozen_and_young_passes_come_less_often() -> None:
    before = gc.get_threshold()
    try:
        tune_for_batches()
        assert gc.get_threshold() == (YOUNG_THRESHOLD, before[1], before[2])
        assert gc.get_freeze_count() > 0
        assert before[0] < YOUNG_THRESHOLD
    finally:  # this test process keeps its own collector
        gc.unfreeze()
        gc.set_threshold(*before)
