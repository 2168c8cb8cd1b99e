"""Connection options for every Kafka client the project creates, from one place.

The Faust worker, the projection's consumer, the producer, the admin and replay tools all call these,
so a cluster's address and its security settings (TLS, SASL) are applied everywhere alike.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from salesflow.errors import ConfigurationError
from salesflow.settings import Settings

log = logging.getLogger(__name__)

TLS_PROTOCOLS = ("SSL", "SASL_SSL")
SASL_PROTOCOLS = ("SASL_PLAINTEXT", "SASL_SSL")


def client_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments shared by aiokafka's producer, consumer and admin client."""
    return {"bootstrap_servers": settings.kafka_bootstrap_servers, **security_options(settings)}


def faust_broker_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``faust.App`` that say where the brokers are and how to reach them."""
    import faust  # lazily: only the worker needs Faust

    options: dict[str, Any] = {
        "broker": ["kafka://" + server.strip() for server in settings.kafka_bootstrap_servers.split(",")]
    }
    security = security_options(settings)
    if "sasl_mechanism" in security:
        # ssl_context=None keeps SASL_PLAINTEXT; a context makes Faust use SASL_SSL.
        options["broker_credentials"] = faust.SASLCredentials(
            username=security["sasl_plain_username"],
            password=security["sasl_plain_password"],
            ssl_context=security.get("ssl_context"),
            mechanism=security["sasl_mechanism"],
        )
    elif "ssl_context" in security:
        options["broker_credentials"] = faust.SSLCredentials(security["ssl_context"])
    return options


def security_options(settings: Settings) -> dict[str, Any]:
    """aiokafka's ``security_protocol``, ``ssl_context`` and ``sasl_*`` arguments for ``settings``."""
    check_security_settings(settings)
    protocol = settings.kafka_security_protocol
    options: dict[str, Any] = {"security_protocol": protocol}
    if protocol in TLS_PROTOCOLS:
        options["ssl_context"] = ssl_context(settings)
    if protocol in SASL_PROTOCOLS:
        assert settings.kafka_sasl_password is not None  # checked above
        options.update(
            sasl_mechanism=settings.kafka_sasl_mechanism,
            sasl_plain_username=settings.kafka_sasl_username,
            sasl_plain_password=settings.kafka_sasl_password.get_secret_value(),
        )
    return options


def check_security_settings(settings: Settings) -> None:
    """Refuse settings that cannot work, or that would quietly send in clear what was meant to be secured."""
    protocol = settings.kafka_security_protocol
    if protocol in SASL_PROTOCOLS and not (settings.kafka_sasl_username and settings.kafka_sasl_password):
        raise ConfigurationError(
            f"SALESFLOW_KAFKA_SECURITY_PROTOCOL={protocol} needs SALESFLOW_KAFKA_SASL_USERNAME and "
            "SALESFLOW_KAFKA_SASL_PASSWORD (or SALESFLOW_KAFKA_SASL_PASSWORD_FILE)"
        )
    if protocol not in SASL_PROTOCOLS and (settings.kafka_sasl_username or settings.kafka_sasl_password):
        raise ConfigurationError(
            f"SASL credentials are set but SALESFLOW_KAFKA_SECURITY_PROTOCOL={protocol}: "
            "set it to SASL_SSL (or SASL_PLAINTEXT), or unset the credentials"
        )
    tls_files = [settings.kafka_ssl_cafile, settings.kafka_ssl_certfile, settings.kafka_ssl_keyfile]
    if protocol not in TLS_PROTOCOLS and any(tls_files):
        raise ConfigurationError(
            f"TLS files are set but SALESFLOW_KAFKA_SECURITY_PROTOCOL={protocol}: "
            "set it to SSL or SASL_SSL, or unset SALESFLOW_KAFKA_SSL_*"
        )
    if settings.kafka_ssl_keyfile and not settings.kafka_ssl_certfile:
        raise ConfigurationError("SALESFLOW_KAFKA_SSL_KEYFILE is set without SALESFLOW_KAFKA_SSL_CERTFILE")


def ssl_context(settings: Settings) -> ssl.SSLContext:
    """A client TLS context: the broker's certificate is verified (CA file, or the system's CAs), the
    host name checked unless turned off, and a client certificate presented when one is set."""
    cafile = _existing_file(settings.kafka_ssl_cafile, "SALESFLOW_KAFKA_SSL_CAFILE")
    try:
        context = ssl.create_default_context(cafile=cafile)
    except ssl.SSLError as exc:
        raise ConfigurationError(
            f"SALESFLOW_KAFKA_SSL_CAFILE={cafile}: not a PEM CA certificate ({exc.reason})"
        ) from None
    context.check_hostname = settings.kafka_ssl_check_hostname
    certfile = _existing_file(settings.kafka_ssl_certfile, "SALESFLOW_KAFKA_SSL_CERTFILE")
    if certfile:
        keyfile = _existing_file(settings.kafka_ssl_keyfile, "SALESFLOW_KAFKA_SSL_KEYFILE")
        password = settings.kafka_ssl_key_password
        try:
            context.load_cert_chain(certfile, keyfile, password.get_secret_value() if password else None)
        except ssl.SSLError as exc:
            raise ConfigurationError(
                f"SALESFLOW_KAFKA_SSL_CERTFILE={certfile}: cannot load the client certificate and key "
                f"({exc.reason or exc}); check SALESFLOW_KAFKA_SSL_KEYFILE and ..._KEY_PASSWORD"
            ) from None
    return context


def describe_connection(settings: Settings) -> str:
    """Where and how the clients connect, for error messages (never the password)."""
    protocol = settings.kafka_security_protocol
    text = f"Kafka at {settings.kafka_bootstrap_servers} over the {protocol} listener"
    if protocol in SASL_PROTOCOLS:
        text += f" with SASL mechanism {settings.kafka_sasl_mechanism} as user {settings.kafka_sasl_username!r}"
    return text


def _existing_file(path: Path | None, variable: str) -> str | None:
    if path is None:
        return None
    if not path.expanduser().is_file():
        raise ConfigurationError(f"{variable}={path}: no such file")
    return str(path.expanduser())


def librdkafka_options(settings: Settings) -> dict[str, Any]:
    """librdkafka's (confluent-kafka's) configuration for the same cluster and security settings as
    ``client_options``: one mapping, so a security setting added there is added here too."""
    check_security_settings(settings)
    protocol = settings.kafka_security_protocol
    options: dict[str, Any] = {
        "bootstrap.servers": settings.kafka_bootstrap_servers,
        "security.protocol": protocol.lower(),
    }
    if protocol in TLS_PROTOCOLS:
        cafile = _existing_file(settings.kafka_ssl_cafile, "SALESFLOW_KAFKA_SSL_CAFILE")
        # "probe": the system's trusted CAs, as ssl.create_default_context() uses for aiokafka.
        options["ssl.ca.location"] = cafile or "probe"
        options["ssl.endpoint.identification.algorithm"] = "https" if settings.kafka_ssl_check_hostname else "none"
        certfile = _existing_file(settings.kafka_ssl_certfile, "SALESFLOW_KAFKA_SSL_CERTFILE")
        if certfile:
            options["ssl.certificate.location"] = certfile
            keyfile = _existing_file(settings.kafka_ssl_keyfile, "SALESFLOW_KAFKA_SSL_KEYFILE")
            if keyfile:
                options["ssl.key.location"] = keyfile
            if settings.kafka_ssl_key_password:
                options["ssl.key.password"] = settings.kafka_ssl_key_password.get_secret_value()
    if protocol in SASL_PROTOCOLS:
        assert settings.kafka_sasl_password is not None  # checked above
        options.update(
            {
                "sasl.mechanism": settings.kafka_sasl_mechanism,
                "sasl.username": settings.kafka_sasl_username,
                "sasl.password": settings.kafka_sasl_password.get_secret_value(),
            }
        )
    return options


def aiokafka_group_options(settings: Settings) -> dict[str, Any]:
    """aiokafka consumer arguments for group membership (session, heartbeat, rebalance, identity)."""
    options: dict[str, Any] = {
        "session_timeout_ms": int(settings.kafka_session_timeout_seconds * 1000),
        "heartbeat_interval_ms": int(settings.kafka_heartbeat_interval_seconds * 1000),
        "rebalance_timeout_ms": int(settings.kafka_rebalance_timeout_seconds * 1000),
    }
    if settings.instance_id:
        options["group_instance_id"] = settings.instance_id
    return options


def librdkafka_group_options(settings: Settings) -> dict[str, Any]:
    """librdkafka consumer configuration for group membership. Under the `consumer` protocol
    (KIP-848) the broker owns the session and heartbeat timing, so only the classic one sets them."""
    options: dict[str, Any] = {"group.protocol": settings.kafka_group_protocol}
    if settings.kafka_group_protocol == "classic":
        options["session.timeout.ms"] = int(settings.kafka_session_timeout_seconds * 1000)
        options["heartbeat.interval.ms"] = int(settings.kafka_heartbeat_interval_seconds * 1000)
    if settings.instance_id:
        options["group.instance.id"] = settings.instance_id
    return options


def faust_group_options(settings: Settings) -> dict[str, Any]:
    """``faust.App`` arguments for group membership, from the same settings as the other clients."""
    options: dict[str, Any] = {
        "broker_session_timeout": settings.kafka_session_timeout_seconds,
        "broker_heartbeat_interval": settings.kafka_heartbeat_interval_seconds,
        "broker_rebalance_timeout": settings.kafka_rebalance_timeout_seconds,
    }
    if settings.instance_id:
        options["consumer_group_instance_id"] = settings.instance_id
    return options


def aiokafka_producer(settings: Settings, **overrides: Any) -> AIOKafkaProducer:
    """An idempotent producer, not started: acks from all in-sync replicas, no duplicates on its own
    retries. ``bootstrap.kafka_producer`` starts and stops one around a block."""
    options: dict[str, Any] = {
        **client_options(settings),
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 5,
        "compression_type": None,
    }
    return AIOKafkaProducer(**{**options, **overrides})


@asynccontextmanager
async def started_producer(settings: Settings) -> AsyncIterator[AIOKafkaProducer]:
    """The idempotent ``acks=all`` producer, started; stopped when the block ends, and also when it
    fails to start (or is cancelled while starting), so no half-open client is left behind."""
    producer = aiokafka_producer(settings)
    try:
        await producer.start()
        yield producer
    finally:
        await producer.stop()
