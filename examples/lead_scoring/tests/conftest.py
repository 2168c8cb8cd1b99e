"""The plugin's tests use SalesFlow's test kit: a throwaway database and run_handlers, no Kafka."""

from __future__ import annotations

import sys
from pathlib import Path

# Tests run from a checkout: the package is importable without installing it.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from salesflow.testing.pytest_plugin import (  # noqa: F401  (fixtures)
    handler_database_url,
    handler_db,
    handler_resources,
    handler_settings,
)
