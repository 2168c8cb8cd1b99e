"""The docs' ``<!-- ci -->`` blocks, run as a reader pastes them (docsgen/shell_blocks.py): each page's
blocks as one bash script, in order, on the real broker and database. Isolated the way the fixtures
isolate a test: its own topic prefix, consumer groups and database, a scratch home folder, and
``pip install`` going to a folder on ``PYTHONPATH`` (not into the project's venv, where every other
test's worker would load the tutorial's plugin)."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

from docsgen.shell_blocks import blocks, script
from salesflow.settings import Settings
from tests.conftest import delete_test_topics
from tests.infra import Endpoints

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = sorted(
    page.relative_to(DOCS).as_posix()
    for page in [*DOCS.glob("tutorial/*.md"), *DOCS.glob("how-to/*.md")]
    if any(b.marker == "ci" and not b.note for b in blocks(page))
)


def reader_env(endpoints: Endpoints, database_url: str, home: Path) -> dict[str, str]:
    run = uuid.uuid4().hex[:8]
    site = home / "site-packages"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "SALESFLOW_", "PIP_"))}
    return {
        **env,
        "HOME": str(home),
        "COLUMNS": "200",  # a terminal's width: rich's tables are cut to 80 columns without one
        "PATH": f"{ROOT / '.venv' / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}",
        "SALESFLOW_KAFKA_BOOTSTRAP_SERVERS": endpoints.kafka_bootstrap,
        "SALESFLOW_DATABASE_URL": database_url,
        "SALESFLOW_TOPIC_PREFIX": f"docs{run}.salesflow.",
        "SALESFLOW_TOPIC_PARTITIONS": "3",
        "SALESFLOW_PROCESSOR_GROUP": f"docs-processor-{run}",
        "SALESFLOW_PROJECTION_GROUP": f"docs-projection-{run}",
        "SALESFLOW_WORKER_METRICS_PORT": "0",
        "SALESFLOW_PROJECTION_METRICS_PORT": "0",
        "SALESFLOW_WORKER_DATA_DIR": str(home / "worker-data"),
        "PIP_TARGET": str(site),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PYTHONPATH": str(site),
    }


@pytest.mark.timeout(900)
@pytest.mark.parametrize("page", PAGES)
def test_the_pages_ci_blocks_run_as_written(page: str, endpoints: Endpoints, database_url: str, tmp_path: Path) -> None:
    stale = subprocess.run(["make", "-q", ".venv/.installed"], cwd=ROOT, check=False).returncode != 0
    if stale:  # `make demo` would reinstall the venv (into PIP_TARGET): CI's `make lint` has just set it up
        pytest.skip("the venv is older than pyproject.toml: run `make setup` first")
    env = reader_env(endpoints, database_url, tmp_path)
    text = script(DOCS / page)
    try:
        done = subprocess.run(
            ["bash", "-c", text], cwd=ROOT, env=env, capture_output=True, text=True, timeout=840, check=False
        )
    finally:
        delete_test_topics(
            [Settings(kafka_bootstrap_servers=endpoints.kafka_bootstrap, topic_prefix=env["SALESFLOW_TOPIC_PREFIX"])]
        )
    assert done.returncode == 0, (
        f"{page}: exit {done.returncode}\n--- stdout\n{done.stdout[-4000:]}\n--- stderr\n{done.stderr[-4000:]}"
    )
