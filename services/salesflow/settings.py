"""Settings for every service, read from ``SALESFLOW_*`` environment variables and a ``.env`` file."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from salesflow.db.urls import mask_password, with_connection_options
from salesflow.domain.topics import Topics
from salesflow.secrets import FileSecretsSettings

KafkaSecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
# The worker's consuming and publishing edge: Faust's agents, or librdkafka batches (docs/explanation/architecture.md).
WorkerEngine = Literal["faust", "batch"]
# Kafka's consumer group protocols: the classic one, or Kafka 4's `consumer` protocol (KIP-848).
GroupProtocol = Literal["classic", "consumer"]
PostgresSslMode = Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]


class Settings(FileSecretsSettings):
    """One settings object, built by the composition root and passed down (never read at import)."""

    model_config = SettingsConfigDict(env_prefix="SALESFLOW_", env_file=".env", extra="ignore")

    kafka_bootstrap_servers: str = "127.0.0.1:39092"
    topic_prefix: str = "salesflow."
    topic_partitions: int = Field(default=6, ge=1)
    topic_replication_factor: int = Field(default=1, ge=1)
    processor_group: str = "salesflow-processor"
    projection_group: str = "salesflow-projection"
    database_url: str = "postgresql+asyncpg://salesflow:salesflow@127.0.0.1:35432/salesflow"

    # The faster engine, which passes every suite (docs/explanation/architecture.md); Faust stays as the other choice.
    worker_engine: WorkerEngine = "batch"
    # Consumer group membership (docs/explanation/failover.md): how fast a dead member is noticed, and a stable
    # identity (static membership) so that a restart within the session timeout causes no rebalance.
    kafka_group_protocol: GroupProtocol = "classic"  # the batch engine's; Faust speaks classic only
    # The broker accepts 6 s to 30 min by default (group.min/max.session.timeout.ms).
    kafka_session_timeout_seconds: float = Field(default=6.0, ge=1, le=1800)
    kafka_heartbeat_interval_seconds: float = Field(default=2.0, gt=0)
    kafka_rebalance_timeout_seconds: float = Field(default=30.0, gt=0)
    # Kafka's group.instance.id; unset: <host>-<service>-<slot>, resolved at start (membership.py).
    # static_membership=false: no instance id, a member leaves the group on SIGTERM (dynamic membership).
    instance_id: str | None = Field(default=None, pattern=r"^[a-zA-Z0-9._-]{1,249}$")
    static_membership: bool = True

    max_event_bytes: int = Field(default=256 * 1024, ge=1024)
    processor_batch_size: int = Field(default=500, ge=1)
    processor_batch_seconds: float = Field(default=0.05, gt=0)
    projection_batch_size: int = Field(default=1000, ge=1)
    projection_batch_seconds: float = Field(default=0.2, gt=0)

    # Extra modules to import before the worker starts, so their @register_event_handler run.
    handler_modules: str = ""
    handler_max_attempts: int = Field(default=3, ge=1)
    handler_backoff_seconds: float = Field(default=0.1, ge=0)
    handler_backoff_max_seconds: float = Field(default=2.0, ge=0)
    # While a database is away (the projection, the outbox relay): the first wait between attempts,
    # doubled each time up to the cap, with full jitter (failure_policy.db_retry_policy).
    db_retry_backoff_seconds: float = Field(default=0.1, ge=0)
    db_retry_backoff_max_seconds: float = Field(default=2.0, ge=0)
    # Handlers with dependencies (docs/how-to/write-handlers.md): the database a `db: AsyncSession`
    # parameter gets (a secret: the URL may hold a password; unset: the SalesFlow database), and
    # which installed plugins (entry points `salesflow.handlers`) load: all, none, or a comma list.
    handler_database_url: SecretStr | None = None
    handler_plugins: str = "all"

    log_level: str = "INFO"
    log_format: Literal["json", "text"] = "json"

    worker_metrics_port: int = 9101
    projection_metrics_port: int = 9102
    # Faust keeps a small folder of its own; out of the working tree by default.
    worker_data_dir: str = "/tmp/salesflow-worker-data"

    # Security (docs/how-to/secured-cluster.md). Every SecretStr setting can
    # also come from a file: SALESFLOW_<NAME>_FILE=/path (see secrets.py).
    kafka_security_protocol: KafkaSecurityProtocol = "PLAINTEXT"
    kafka_sasl_mechanism: SaslMechanism = "PLAIN"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = None  # None: the system's trusted CAs
    kafka_ssl_certfile: Path | None = None  # client certificate (mutual TLS), PEM
    kafka_ssl_keyfile: Path | None = None
    kafka_ssl_key_password: SecretStr | None = None
    kafka_ssl_check_hostname: bool = True
    # Merged into database_url (password; libpq-style sslmode/sslrootcert/... query parameters), so
    # every engine made from that URL, wherever it is made, connects the same way (db/engine.py).
    database_password: SecretStr | None = None
    database_sslmode: PostgresSslMode | None = None
    database_ssl_rootcert: Path | None = None
    database_ssl_cert: Path | None = None
    database_ssl_key: Path | None = None

    @field_validator(
        "kafka_sasl_username",
        "kafka_ssl_cafile",
        "kafka_ssl_certfile",
        "kafka_ssl_keyfile",
        "database_sslmode",
        "database_ssl_rootcert",
        "database_ssl_cert",
        "database_ssl_key",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        # `export SALESFLOW_KAFKA_SSL_CAFILE=` means "not set", not the current directory.
        return None if value == "" else value

    @field_validator("instance_id", mode="before")
    @classmethod
    def _empty_instance_id_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value

    @model_validator(mode="after")
    def _heartbeat_within_session(self) -> Settings:
        # A member heartbeats several times per session, or one late beat costs it the group.
        if self.kafka_heartbeat_interval_seconds * 3 > self.kafka_session_timeout_seconds:
            raise ValueError(
                f"SALESFLOW_KAFKA_HEARTBEAT_INTERVAL_SECONDS={self.kafka_heartbeat_interval_seconds:g} must be at most "
                f"a third of SALESFLOW_KAFKA_SESSION_TIMEOUT_SECONDS={self.kafka_session_timeout_seconds:g}"
            )
        if self.instance_id and not self.static_membership:
            raise ValueError(f"SALESFLOW_INSTANCE_ID={self.instance_id} is set but SALESFLOW_STATIC_MEMBERSHIP=false")
        return self

    @model_validator(mode="after")
    def _merge_database_options(self) -> Settings:
        self.database_url = with_connection_options(
            self.database_url,
            password=self.database_password.get_secret_value() if self.database_password else None,
            sslmode=self.database_sslmode,
            sslrootcert=self.database_ssl_rootcert,
            sslcert=self.database_ssl_cert,
            sslkey=self.database_ssl_key,
        )
        return self

    def __repr_args__(self) -> Any:
        # The merged database_url may hold a password: never show it in a repr or a log line.
        for name, value in super().__repr_args__():
            yield name, mask_password(value) if name == "database_url" else value

    @cached_property
    def topics(self) -> Topics:
        return Topics(prefix=self.topic_prefix)
