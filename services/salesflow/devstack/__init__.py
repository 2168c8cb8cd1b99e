"""Local dev stack: a real single-node Kafka (KRaft, Maven Central jars) and a throwaway Postgres.

Typical use::

    from salesflow.devstack import up, env_exports
    up()                      # idempotent; fetches/installs what is missing
    os.environ.update(env_exports())
"""

from .kafka import CONSUMER_GROUP_COMMAND, TOPIC_COMMAND, KafkaConfig, kafka_version
from .postgres import PostgresConfig
from .stack import (
    StackStatus,
    down,
    ensure_kafka_jars,
    ensure_prerequisites,
    env_exports,
    kafka_config,
    kafka_tool,
    postgres_config,
    repo_root,
    reset,
    stack_dir,
    status,
    up,
)

__all__ = [
    "CONSUMER_GROUP_COMMAND",
    "TOPIC_COMMAND",
    "KafkaConfig",
    "PostgresConfig",
    "StackStatus",
    "down",
    "ensure_kafka_jars",
    "ensure_prerequisites",
    "env_exports",
    "kafka_config",
    "kafka_tool",
    "kafka_version",
    "postgres_config",
    "repo_root",
    "reset",
    "stack_dir",
    "status",
    "up",
]
