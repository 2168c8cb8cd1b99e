"""Replay: reset a consumer group's offsets (as Kafka's own tool does), re-publish single or failed
events, redrive dead letters, and show consumer lag.

- ``offsets.reset_offsets``: the plan (``plan.ResetPlan``) for a scope and target, applied on request;
- ``republish.Replayer``: re-publish events' original records, marked with the replay header;
- ``deadletters``: list, show and redrive dead letters;
- ``lag.group_lag``: lag per partition, in records and seconds.
"""

from salesflow.replay.group_lag import GroupLag, group_lag
from salesflow.replay.offsets import reset_offsets
from salesflow.replay.plan import ResetPlan
from salesflow.replay.republish import Replayer, ReplayResult
from salesflow.replay.targets import ResetTarget, TopicScope

__all__ = [
    "GroupLag",
    "ReplayResult",
    "Replayer",
    "ResetPlan",
    "ResetTarget",
    "TopicScope",
    "group_lag",
    "reset_offsets",
]
