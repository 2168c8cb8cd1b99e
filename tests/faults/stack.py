"""A Kafka broker and a PostgreSQL cluster of the fault suite's own, so it can kill and stop them
without touching the stack the other tests share."""

from __future__ import annotations

import os
import signal
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from salesflow.devstack import kafka, postgres
from salesflow.devstack.kafka import KafkaConfig, kafka_version
from salesflow.devstack.postgres import PostgresConfig
from salesflow.devstack.stack import ensure_kafka_jars


def free_port() -> int:
    """A loopback port nobody listens on now (so several suites can run side by side)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class DedicatedStack:
    kafka: KafkaConfig
    postgres: PostgresConfig

    @classmethod
    def under(cls, state_dir: Path) -> DedicatedStack:
        libs = ensure_kafka_jars()
        return cls(
            kafka=KafkaConfig(
                state_dir=state_dir,
                port=free_port(),
                controller_port=free_port(),
                version=kafka_version(),
                jar_dir=libs,
            ),
            postgres=PostgresConfig(state_dir=state_dir, port=free_port()),
        )

    @property
    def bootstrap(self) -> str:
        return self.kafka.bootstrap

    @property
    def database_url(self) -> str:
        return self.postgres.url

    def start(self) -> None:
        self.start_broker()
        self.start_postgres()

    def stop(self) -> None:
        kafka.stop(self.kafka)
        postgres.stop(self.postgres)

    def start_broker(self) -> None:
        kafka.start(self.kafka, timeout=120)

    def kill_broker(self) -> None:
        """SIGKILL: no clean shutdown, as when the machine under the broker dies."""
        pid = kafka.read_pid(self.kafka)
        assert pid is not None, "the broker is not running"
        os.kill(pid, signal.SIGKILL)
        for _ in range(100):
            if kafka.read_pid(self.kafka) is None:
                return
            time.sleep(0.1)

    def stop_postgres(self) -> None:
        postgres.stop(self.postgres)

    def start_postgres(self) -> None:
        postgres.start(self.postgres)
