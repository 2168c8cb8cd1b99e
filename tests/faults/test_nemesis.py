"""The nemesis in CI: 90 seconds of load with a fixed seed and a short list of faults (process kills and
stops, a broker restart, a network cut through Toxiproxy), then the exact check. The long runs are
``make nemesis`` (docs/operations/reliability.md)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from salesflow.devstack.stack import stack_dir
from salesflow.devstack.toxiproxy import binary_path
from salesflow.producer.demo import DemoGenerator
from salesflow.settings import Settings
from tests.faults.nemesis.expected import clean_run_facts
from tests.faults.nemesis.run import nemesis, replay_command
from tests.faults.nemesis.schedule import NETWORK_KINDS, schedule

pytestmark = [pytest.mark.faults, pytest.mark.timeout(1500)]

SEED = 11  # its 90 s schedule: a SIGSTOP, a network cut to Postgres and one to Kafka, a broker
# restart, a SIGTERM and a SIGKILL (tests/unit could print it: schedule(11, 90, CI_KINDS))
DURATION_S = 90.0
RATE = 40.0
CI_KINDS = ["sigkill", "sigterm", "sigstop", "broker-restart", "postgres-restart", "net-cut"]


def _kinds() -> list[str]:
    # Network faults need Toxiproxy, built with Go on first use: without Go, the rest still run.
    if binary_path(stack_dir()).exists() or shutil.which("go") or Path("/usr/local/go/bin/go").exists():
        return CI_KINDS
    return [k for k in CI_KINDS if k not in NETWORK_KINDS]


def test_the_schedule_is_the_seeds() -> None:
    assert schedule(SEED, DURATION_S, CI_KINDS) == schedule(SEED, DURATION_S, CI_KINDS)
    assert schedule(SEED, DURATION_S, CI_KINDS) != schedule(SEED + 1, DURATION_S, CI_KINDS)
    kinds = {f.kind for f in schedule(SEED, DURATION_S, CI_KINDS)}
    assert {"sigkill", "sigstop", "broker-restart", "net-cut"} <= kinds, kinds


async def test_nemesis_short_run(tmp_path: Path) -> None:
    kinds = _kinds()
    outcome = await nemesis(DURATION_S, SEED, kinds, RATE, tmp_path)
    print("\n".join(outcome.timeline))
    print(outcome.line, flush=True)
    assert outcome.landed, "no fault landed: the run tested nothing"
    assert outcome.verdict.base.acknowledged > 0
    assert outcome.verdict.clean, f"{outcome.line}\nreplay: {replay_command(DURATION_S, SEED, kinds, RATE)}"
    assert outcome.chart.exists()


async def test_the_clean_run_tells_facts_apart() -> None:
    """The reference of ``wrong_facts`` has teeth: every demo event has facts, the same events give the
    same facts, and an event with another cost gives other facts."""
    settings = Settings()
    events = list(DemoGenerator(seed=3).events(200))
    first = await clean_run_facts(settings, events)
    assert set(first) == {e["id"] for e in events} and all(first.values())
    assert await clean_run_facts(settings, events) == first
    action = next(e for e in events if e["type"] == "autopilot.action_executed")
    changed = {**action, "data": {**action["data"], "cost_usd": action["data"]["cost_usd"] + 1}}
    assert (await clean_run_facts(settings, [changed]))[action["id"]] != first[action["id"]]
