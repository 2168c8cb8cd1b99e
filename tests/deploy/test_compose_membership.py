"""docker-compose.yml and static membership (docs/explanation/failover.md): no two containers share an id."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_scalable_workers_take_their_ids_from_their_host_names_and_the_projection_has_its_own() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    # `--scale worker=3` copies one service: a fixed id there would make three members claim it.
    assert "SALESFLOW_INSTANCE_ID" not in services["worker"]["environment"]
    assert "hostname" not in services["worker"]
    projection = services["projection"]["environment"]
    assert projection["SALESFLOW_INSTANCE_ID"] == "salesflow-projection-0"
    # The merge kept the shared settings (a YAML merge is shallow: an error here would drop them).
    assert (
        projection["SALESFLOW_KAFKA_BOOTSTRAP_SERVERS"]
        == services["worker"]["environment"]["SALESFLOW_KAFKA_BOOTSTRAP_SERVERS"]
    )
