"""A quick interleaved A/B of the worker engines: ``python -m bench.engines_ab [EVENTS] [ROUNDS] [ENGINES]``.

ENGINES: comma-separated, of ``batch``, ``faust`` and ``quix`` (the Quix Streams peer,
``bench.quix_peer``); ``batch,faust`` by default. The same preloaded records, one process per run,
in turn (batch, faust, batch, ...),
each run's events/s, peak RSS and the load average at its start. For a change to one engine, when a
full ``make bench`` is too long; its figures are comparable only within one run.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

from bench import kafka_io, quix_peer, throughput
from bench.stack import BenchStack


async def main(events: int, rounds: int, engines: list[str]) -> None:
    stack = BenchStack.open()
    await stack.create_database()
    try:
        source = await stack.settings("ab")
        await kafka_io.preload(source, events)
        logs = Path(tempfile.mkdtemp(prefix="salesflow-engines-ab-"))
        for _ in range(rounds):
            for engine in engines:
                load = os.getloadavg()[0]
                if engine == "quix":
                    run = await quix_peer.peer_run(source, events, logs, 900)
                else:
                    run = await throughput.processor_run(source, events, logs, 900, engine=engine)
                print(
                    f"{engine}: {run.events_per_s:,.0f} events/s, peak RSS {run.peak_rss_mb:.0f} MB, load {load:.1f}",
                    flush=True,
                )
    finally:
        await stack.drop_database()


if __name__ == "__main__":
    asyncio.run(
        main(
            int(sys.argv[1]) if len(sys.argv) > 1 else 20_000,
            int(sys.argv[2]) if len(sys.argv) > 2 else 2,
            sys.argv[3].split(",") if len(sys.argv) > 3 else ["batch", "faust"],
        )
    )
