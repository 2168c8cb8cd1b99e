"""The cyclic garbage collector, tuned for services that turn batches of records into rows and records.

Each record makes dicts and tuples that reference counting frees once its batch is written. With the
default thresholds the collector's young pass ran every 700 container allocations, scanned those
objects again and again, and promoted a batch's still-live rows to the older generations, whose full
passes grow with the heap: a quarter of the projection's CPU per record (``bench.projection_core``,
``bench/README.md``). Cycles are still collected, only less often.
"""

from __future__ import annotations

import gc

# Container allocations (net of frees) between young passes; the older generations keep their
# defaults, which count young passes.
YOUNG_THRESHOLD = 50_000


def tune_for_batches() -> None:
    """Call once the service is built: what startup made (modules, settings, clients) is frozen out of
    every later pass, and young passes come every ``YOUNG_THRESHOLD`` allocations."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)
