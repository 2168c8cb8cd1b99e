"""Event handlers. Importing this package registers every built-in handler in ``DEFAULT_REGISTRY``.

What runs for each type (``salesflow handlers`` prints the live table):

| event                     | handlers                                                                  |
| ------------------------- | ------------------------------------------------------------------------- |
| lead.created              | analytics.lead_funnel, attribution.first_touch, commands.trigger_autopilot, |
|                           | commands.notify_owner, metrics.count_lead                                 |
| autopilot.action_executed | attribution.ai_roi, metrics.count_ai_action                               |
| message.sent              | analytics.contacted_funnel, attribution.message_touch, metrics.count_message, |
|                           | slo.message_latency                                                       |
| sequence.step_executed    | analytics.sequence_progress, metrics.count_sequence_step                  |
"""

from salesflow.handlers import analytics, attribution, commands, metrics, slo  # noqa: F401  (registers)
from salesflow.handlers.registry import DEFAULT_REGISTRY, HandlerRegistry, register_event_handler

__all__ = ["DEFAULT_REGISTRY", "HandlerRegistry", "register_event_handler"]
