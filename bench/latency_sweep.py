"""End-to-end latency for a few choices of settings, in turn: ``python -m bench.latency_sweep SECONDS
NAME=KEY:VALUE,KEY:VALUE ...`` (``defaults=`` for none). Each choice runs one worker and one projection
with those ``SALESFLOW_*`` settings (``processor_batch_seconds:0.01``), at 1,000 and 5,000 events/s for
SECONDS each (``bench.latency.e2e_run``, the measure of ``make bench``), and prints p50/p95/p99/max.
One run per choice: repeat the list (``defaults= small= defaults= small=``) to see the spread.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

from bench import latency
from bench.stack import BenchStack

RATES = [1_000, 5_000]
RESULT_TABLES = "events, funnel_facts, attribution_touches, ai_action_facts, message_facts, sequence_step_facts"


async def sweep(seconds: float, choices: list[str]) -> None:
    stack = BenchStack.open()
    await stack.create_database()
    logs = Path(tempfile.mkdtemp(prefix="salesflow-latency-sweep-"))
    try:
        for choice in choices:
            name, _, assignments = choice.partition("=")
            saved = dict(os.environ)
            for assignment in filter(None, assignments.split(",")):
                key, _, value = assignment.partition(":")
                os.environ[f"SALESFLOW_{key.upper()}"] = value
            try:
                conn = await stack.connect()
                # Each choice starts from empty tables: the load's event ids repeat from run to run.
                await conn.execute(latency.FINAL_SEEN)
                await conn.execute(f"TRUNCATE bench_final_seen, {RESULT_TABLES}")
                await conn.close()
                load = os.getloadavg()[0]
                results = await latency.e2e_run(stack, RATES, seconds, logs / name)
                shown = "; ".join(
                    f"{r.rate:,}/s: p50 {r.p50_ms:,.0f} p95 {r.p95_ms:,.0f} p99 {r.p99_ms:,.0f} max {r.max_ms:,.0f} ms"
                    for r in results
                )
                print(f"{name} [{assignments}] load {load:.1f}: {shown}", flush=True)
            finally:
                os.environ.clear()
                os.environ.update(saved)
    finally:
        await stack.drop_database()


if __name__ == "__main__":
    asyncio.run(sweep(float(sys.argv[1]), sys.argv[2:]))
