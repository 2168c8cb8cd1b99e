"""SLOs as code: ``deploy/slo/slos.yaml`` in, Prometheus rules, a PrometheusRule and a Grafana
dashboard out (``salesflow slo generate``), with a drift check (``salesflow slo check``)."""

from salesflow.slo.render import SPEC_PATH, drift, generated_files, write
from salesflow.slo.spec import Spec, load_spec

__all__ = ["SPEC_PATH", "Spec", "drift", "generated_files", "load_spec", "write"]
