"""The test kit for handlers: build events, run them through the handlers as the worker does, with a
real database session, and no Kafka.

```python
from salesflow.testing import lead_created, run_handlers

result = await run_handlers(lead_created(lead_id="l-1"), registry=my_registry, resources=handler_resources)
assert [r.status for r in result.reports] == ["ok"]
```

``pytest_plugins = ["salesflow.testing.pytest_plugin"]`` in the top-level ``conftest.py`` (or importing
the fixtures from that module into any ``conftest.py``) adds the fixtures
``handler_database_url`` (a throwaway database, migrated, dropped after the session),
``handler_resources`` (what handlers are injected with, on that database) and ``handler_db`` (a
session on it, to look at what a handler wrote).
"""

from salesflow.testing.factories import (
    autopilot_action_executed,
    event_dict,
    lead_created,
    make_event,
    message_sent,
    sequence_step_executed,
)
from salesflow.testing.runner import TEST_POLICY, run_handlers

__all__ = [
    "TEST_POLICY",
    "autopilot_action_executed",
    "event_dict",
    "lead_created",
    "make_event",
    "message_sent",
    "run_handlers",
    "sequence_step_executed",
]
