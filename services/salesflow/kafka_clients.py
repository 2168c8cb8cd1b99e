"""Connection options for every Kafka client the project creates, from one place.

The Faust worker, the projection's consumer, the producer, the admin and replay tools all call these,
so a cluster's address and (later) its security settings are applied everywhere alike.
"""

from __future__ import annotations

from typing import Any

from salesflow.settings import Settings


def client_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments shared by aiokafka's producer, consumer and admin client."""
    return {"bootstrap_servers": settings.kafka_bootstrap_servers}


def faust_broker_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``faust.App`` that say where the brokers are and how to reach them."""
    return {"broker": ["kafka://" + server.strip() for server in settings.kafka_bootstrap_servers.split(",")]}
