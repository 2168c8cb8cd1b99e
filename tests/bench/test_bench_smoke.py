"""The benchmark harness runs end to end in its smoke mode (tiny sizes, a few seconds each) and
writes a complete report. Figures are only checked to be measured: speed is the benchmark's
business (``make bench``), never a wall-clock assertion in a test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.report import TARGETS
from salesflow.settings import Settings
from tests.harness import ROOT
from tests.infra import Endpoints

pytestmark = pytest.mark.e2e

REQUIRED = (
    "processor_events_per_s",
    "raw_consume_events_per_s",
    "processor_vs_raw_consume_ratio",
    "projection_rows_per_s",
    "raw_copy_rows_per_s",
    "projection_vs_copy_ratio",
    "worker_rss_mb",
    # the floors: the contracts' own cost beside our code
    "raw_librdkafka_consume_events_per_s",
    "contract_floor_events_per_s",
    "raw_upsert_rows_per_s",
    "upsert_vs_copy_ratio",
    # the peer: a Quix Streams application doing the worker's work on the same records
    "quix_peer_events_per_s",
    "processor_vs_quix_ratio",
)


@pytest.mark.timeout(900)
def test_bench_smoke_writes_a_complete_report(endpoints: Endpoints, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "SALESFLOW_KAFKA_BOOTSTRAP_SERVERS": endpoints.kafka_bootstrap,
        "SALESFLOW_DATABASE_URL": endpoints.database_url,
    }
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--out", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        # A guard against a hang, not a figure: smoke mode now also runs the bare Faust agent, both
        # engines with one and two worker processes, and the Quix Streams peer.
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]

    report = json.loads((tmp_path / "latest.json").read_text())
    for key in REQUIRED:
        assert report[key] > 0, key
    assert report["smoke"] is True
    assert set(report["e2e_p99_ms"]) == {"200"}
    assert report["e2e"][0]["events"] == 600  # every event produced was timed to its final row
    assert report["environment"]["cores"] == os.cpu_count()
    assert {"python", "kafka", "postgres", "libraries"} <= set(report["environment"])
    assert set(report["targets"]) == set(TARGETS)
    for check in report["targets"].values():  # measured (the e2e ones at the smoke's rate aside), with why
        assert check["met"] is not None or check["value"] is None
        assert "why" in check or check["met"] is not False
    assert report["relay_events_per_s"] > 0 and report["relay_bare_produce_events_per_s"] > 0
    assert report["targets"]["relay_commit_to_kafka_p99_ms@1000"]["value"] > 0
    assert (tmp_path / "latest.png").stat().st_size > 0
    default_engine = Settings.model_fields["worker_engine"].default
    markdown = (tmp_path / "latest.md").read_text()
    assert f"| processor ({default_engine} engine, the default), events/s" in markdown
    assert "| Quix Streams peer, the worker's work" in markdown
    assert len(list(tmp_path.glob("20*.json"))) == 1  # the dated copy
