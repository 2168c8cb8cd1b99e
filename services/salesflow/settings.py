"""Settings for every service, read from ``SALESFLOW_*`` environment variables and a ``.env`` file."""

from __future__ import annotations

from functools import cached_property

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from salesflow.domain.topics import Topics


class Settings(BaseSettings):
    """One settings object, built by the composition root and passed down (never read at import)."""

    model_config = SettingsConfigDict(env_prefix="SALESFLOW_", env_file=".env", extra="ignore")

    kafka_bootstrap_servers: str = "127.0.0.1:39092"
    topic_prefix: str = "salesflow."
    topic_partitions: int = Field(default=6, ge=1)
    topic_replication_factor: int = Field(default=1, ge=1)
    processor_group: str = "salesflow-processor"
    projection_group: str = "salesflow-projection"
    database_url: str = "postgresql+asyncpg://salesflow:salesflow@127.0.0.1:35432/salesflow"

    max_event_bytes: int = Field(default=256 * 1024, ge=1024)
    processor_batch_size: int = Field(default=500, ge=1)
    processor_batch_seconds: float = Field(default=0.05, gt=0)
    projection_batch_size: int = Field(default=1000, ge=1)
    projection_batch_seconds: float = Field(default=0.2, gt=0)

    handler_max_attempts: int = Field(default=3, ge=1)
    handler_backoff_seconds: float = Field(default=0.1, ge=0)
    handler_backoff_max_seconds: float = Field(default=2.0, ge=0)

    worker_metrics_port: int = 9101
    projection_metrics_port: int = 9102
    # Faust keeps a small folder of its own; out of the working tree by default.
    worker_data_dir: str = "/tmp/salesflow-worker-data"

    @cached_property
    def topics(self) -> Topics:
        return Topics(prefix=self.topic_prefix)
