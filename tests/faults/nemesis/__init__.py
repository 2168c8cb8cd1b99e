"""The nemesis run (issue 28): random faults of every kind under a steady load, the outbox in the
loop, then an exact check of what came out. ``make nemesis DURATION=600 SEED=1``, or
``python -m tests.faults.nemesis --help``. It reuses the fault suite's stack, supervisor, checker,
freshness and group watch; docs/operations/reliability.md shows its verdicts."""
