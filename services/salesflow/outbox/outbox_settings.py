"""The relay's own settings, ``SALESFLOW_OUTBOX_*``; Kafka comes from the pipeline's ``Settings``."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class OutboxSettings(BaseSettings):
    """Where the outbox table is and how the relay drains it."""

    model_config = SettingsConfigDict(env_prefix="SALESFLOW_OUTBOX_", env_file=".env", extra="ignore")

    # The service's database (the one holding salesflow_outbox), not the pipeline's.
    database_url: SecretStr | None = None
    batch_size: int = Field(default=2000, ge=1, le=50_000)
    # Polling is the fallback: LISTEN/NOTIFY wakes the relay as soon as a transaction commits.
    poll_interval_seconds: float = Field(default=1.0, gt=0)
    # How often a standby tries to become the leader, and how often the leader checks it still is.
    leader_check_seconds: float = Field(default=1.0, gt=0)
    # How long librdkafka keeps retrying one record before the relay gives up on the batch and retries.
    message_timeout_seconds: float = Field(default=30.0, gt=0)
    # Rows of a topic the cluster does not have are held back; how often the topic is looked up again.
    unknown_topic_recheck_seconds: float = Field(default=60.0, gt=0)
    # One port per relay on a host (a second relay on the same port stops with a clear line); 0: any free one.
    metrics_port: int = Field(default=9103, ge=0, le=65535)

    def url(self, fallback: str) -> str:
        """The outbox database URL, or ``fallback`` (the pipeline's ``SALESFLOW_DATABASE_URL``)."""
        return self.database_url.get_secret_value() if self.database_url else fallback
