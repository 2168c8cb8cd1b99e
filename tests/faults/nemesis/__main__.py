"""``python -m tests.faults.nemesis --duration 600 --seed 1``: one nemesis run; exits 1 unless clean.
The verdict line, the fault timeline and the chart's path are printed; a failing run prints the
command that replays its fault schedule."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from tests.faults.nemesis.run import nemesis, replay_command
from tests.faults.nemesis.schedule import KINDS


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of load and faults")
    parser.add_argument("--seed", type=int, default=1, help="the fault schedule's and the workload's seed")
    parser.add_argument("--kinds", default="", help=f"comma-separated fault kinds (default all: {','.join(KINDS)})")
    parser.add_argument("--rate", type=float, default=50.0, help="events per second, all types")
    parser.add_argument("--out", type=Path, default=Path("nemesis-results"), help="where the chart goes")
    args = parser.parse_args()
    kinds = [k for k in args.kinds.split(",") if k] or None
    outcome = asyncio.run(nemesis(args.duration, args.seed, kinds, args.rate, args.out))
    print("[nemesis] timeline (stall and worst freshness within each fault and 10 s after it):")
    print("\n".join(outcome.timeline))
    print(f"[nemesis] chart: {outcome.chart}")
    print(outcome.line, flush=True)
    if not outcome.verdict.clean:
        print(f"[nemesis] FAILED; replay with: {replay_command(args.duration, args.seed, kinds, args.rate)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
