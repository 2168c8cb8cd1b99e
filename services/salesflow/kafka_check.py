"""One connection attempt to the cluster, with an error that says what is wrong and which setting to fix.

aiokafka logs the cause of a failed bootstrap and raises only ``Unable to bootstrap from [...]``;
the CLI runs this check first, so a wrong password or an untrusted certificate ends a command at
once with one clear line (where, over which listener and SASL mechanism, why), not a traceback.
"""

from __future__ import annotations

import asyncio
import ssl

from aiokafka.conn import create_conn
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)
from aiokafka.protocol.metadata import MetadataRequest

from salesflow.errors import KafkaConnectError
from salesflow.kafka_clients import TLS_PROTOCOLS, describe_connection, security_options
from salesflow.settings import Settings


async def verify_connection(settings: Settings, *, timeout: float = 10.0) -> None:
    """Connect, authenticate and fetch metadata from one bootstrap server; raise ``KafkaConnectError``
    (or ``ConfigurationError`` for settings that cannot work) when none of them answers."""
    options = security_options(settings)
    failures: list[tuple[str, BaseException]] = []
    for server in (s.strip() for s in settings.kafka_bootstrap_servers.split(",")):
        host, _, port = server.rpartition(":")
        try:
            await asyncio.wait_for(_probe(host.strip("[]"), int(port), options, timeout), timeout)
            return
        except (TimeoutError, OSError, KafkaError) as exc:
            failures.append((server, exc))
    _, last = failures[-1]
    reason, why = explain(settings, last, timeout)
    raise KafkaConnectError(f"cannot connect to {describe_connection(settings)}: {why}", reason=reason)


async def _probe(host: str, port: int, options: dict[str, object], timeout: float) -> None:
    conn = await create_conn(host, port, request_timeout_ms=int(timeout * 1000), **options)
    try:
        # A TCP (or TLS) connection alone proves little: ask for metadata as a real client would.
        await conn.send(MetadataRequest([]))
    finally:
        conn.close()


def explain(settings: Settings, exc: BaseException, timeout: float) -> tuple[str, str]:
    """A short reason code and a sentence for ``exc``, naming the settings that decide it."""
    cafile = settings.kafka_ssl_cafile or "the system's trusted CAs"
    if isinstance(exc, SaslAuthenticationFailed):
        return "authentication", (
            f"authentication failed ({_detail(exc)}); check SALESFLOW_KAFKA_SASL_USERNAME, "
            "SALESFLOW_KAFKA_SASL_PASSWORD (or ..._FILE) and SALESFLOW_KAFKA_SASL_MECHANISM"
        )
    if isinstance(exc, UnsupportedSaslMechanismError):
        return "authentication", f"{_detail(exc)}; set SALESFLOW_KAFKA_SASL_MECHANISM to one of them"
    if isinstance(exc, ssl.SSLCertVerificationError):
        hint = (
            "; the certificate does not name this host (SALESFLOW_KAFKA_SSL_CHECK_HOSTNAME)"
            if "hostname" in (exc.verify_message or "").lower()
            else ""
        )
        return "tls", (
            f"TLS error: the broker's certificate is not trusted ({exc.verify_message}); trusted CAs: "
            f"{cafile} (SALESFLOW_KAFKA_SSL_CAFILE){hint}"
        )
    if isinstance(exc, ssl.SSLError):
        return "tls", (
            f"TLS error: handshake failed ({exc.reason or exc}); is the listener really "
            f"{settings.kafka_security_protocol}, and does it need a client certificate?"
        )
    if isinstance(exc, asyncio.TimeoutError):
        return "unreachable", (
            f"no answer within {timeout:.0f}s; a listener whose protocol (TLS or not) differs from "
            f"SALESFLOW_KAFKA_SECURITY_PROTOCOL={settings.kafka_security_protocol} behaves like this too"
        )
    if isinstance(exc, ConnectionResetError) and settings.kafka_security_protocol in TLS_PROTOCOLS:
        return "tls", (
            "TLS error: the connection was reset during the handshake; is the listener really "
            f"{settings.kafka_security_protocol} (TLS), not PLAINTEXT or SASL_PLAINTEXT?"
        )
    if isinstance(exc, OSError):
        return "unreachable", f"unreachable ({exc.strerror or type(exc).__name__})"
    if isinstance(exc, KafkaConnectionError):
        return "protocol", (
            f"the broker closed the connection ({_detail(exc)}); does the listener expect "
            f"SALESFLOW_KAFKA_SECURITY_PROTOCOL={settings.kafka_security_protocol}?"
        )
    return "protocol", f"{type(exc).__name__}: {_detail(exc)}"


def _detail(exc: BaseException) -> str:
    # aiokafka's str() is "[Error 58] SaslAuthenticationFailed: <broker message>": keep the message.
    text = str(exc)
    return text.split(": ", 1)[1] if text.startswith("[Error") and ": " in text else text
