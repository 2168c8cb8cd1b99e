"""Every Kafka client gets its security options from kafka_clients.py; settings that cannot work are refused."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import faust
import pytest
from aiokafka.errors import KafkaConnectionError, SaslAuthenticationFailed, UnsupportedSaslMechanismError
from faust.types.auth import AuthProtocol

from salesflow.devstack.tls import make_ca, make_certificate
from salesflow.errors import ConfigurationError
from salesflow.kafka_check import explain
from salesflow.kafka_clients import client_options, describe_connection, faust_broker_options
from salesflow.settings import Settings

PASSWORD = "kafka-pw-Distinctive-4242"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("pki")
    ca = make_ca(folder)
    client = make_certificate(ca, folder, "client", hosts=("salesflow-worker",), client=True)
    return {"ca": ca.cert, "cert": client.cert, "key": client.key}


def sasl_ssl(pki: dict[str, Path], **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "kafka_bootstrap_servers": "b-1.example.com:9096,b-2.example.com:9096",
        "kafka_security_protocol": "SASL_SSL",
        "kafka_sasl_mechanism": "SCRAM-SHA-512",
        "kafka_sasl_username": "salesflow",
        "kafka_sasl_password": PASSWORD,
        "kafka_ssl_cafile": pki["ca"],
    }
    return Settings(**{**values, **overrides})


def test_plaintext_is_the_default_and_adds_nothing() -> None:
    assert client_options(Settings(kafka_bootstrap_servers="k:9092")) == {
        "bootstrap_servers": "k:9092",
        "security_protocol": "PLAINTEXT",
    }
    assert faust_broker_options(Settings(kafka_bootstrap_servers="k:9092")) == {"broker": ["kafka://k:9092"]}


def test_sasl_ssl_gives_aiokafka_the_mechanism_credentials_and_a_verifying_tls_context(pki: dict[str, Path]) -> None:
    options = client_options(sasl_ssl(pki))
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("salesflow", PASSWORD)
    context = options["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_the_faust_worker_gets_the_same_as_broker_credentials(pki: dict[str, Path]) -> None:
    options = faust_broker_options(sasl_ssl(pki, kafka_sasl_mechanism="SCRAM-SHA-256"))
    assert options["broker"] == ["kafka://b-1.example.com:9096", "kafka://b-2.example.com:9096"]
    credentials = options["broker_credentials"]
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.protocol == AuthProtocol.SASL_SSL and credentials.mechanism.value == "SCRAM-SHA-256"
    assert (credentials.username, credentials.password) == ("salesflow", PASSWORD)
    assert PASSWORD not in repr(credentials)


def test_sasl_plaintext_has_no_tls() -> None:
    settings = Settings(kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_username="u", kafka_sasl_password=PASSWORD)
    assert "ssl_context" not in client_options(settings)
    assert faust_broker_options(settings)["broker_credentials"].protocol == AuthProtocol.SASL_PLAINTEXT


def test_ssl_with_a_client_certificate_is_mutual_tls_for_every_client(pki: dict[str, Path]) -> None:
    settings = Settings(
        kafka_security_protocol="SSL",
        kafka_ssl_cafile=pki["ca"],
        kafka_ssl_certfile=pki["cert"],
        kafka_ssl_keyfile=pki["key"],
    )
    options = client_options(settings)
    assert options["security_protocol"] == "SSL" and isinstance(options["ssl_context"], ssl.SSLContext)
    credentials = faust_broker_options(settings)["broker_credentials"]
    assert isinstance(credentials, faust.SSLCredentials) and credentials.protocol == AuthProtocol.SSL


def test_host_name_checking_can_be_turned_off_but_the_chain_is_still_verified(pki: dict[str, Path]) -> None:
    context = client_options(sasl_ssl(pki, kafka_ssl_check_hostname=False))["ssl_context"]
    assert not context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"kafka_sasl_password": None}, "needs SALESFLOW_KAFKA_SASL_USERNAME and SALESFLOW_KAFKA_SASL_PASSWORD"),
        ({"kafka_security_protocol": "SSL"}, "SASL credentials are set but SALESFLOW_KAFKA_SECURITY_PROTOCOL=SSL"),
        (
            {"kafka_ssl_cafile": Path("/nonexistent/ca.pem")},
            "SALESFLOW_KAFKA_SSL_CAFILE=/nonexistent/ca.pem: no such file",
        ),
        (
            {"kafka_ssl_keyfile": Path("/k.pem")},
            "SALESFLOW_KAFKA_SSL_KEYFILE is set without SALESFLOW_KAFKA_SSL_CERTFILE",
        ),
    ],
)
def test_settings_that_cannot_work_are_refused_without_showing_the_password(
    pki: dict[str, Path], overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message) as caught:
        client_options(sasl_ssl(pki, **overrides))
    assert PASSWORD not in str(caught.value)


def test_tls_files_on_a_plaintext_listener_are_refused_rather_than_ignored(pki: dict[str, Path]) -> None:
    with pytest.raises(ConfigurationError, match="TLS files are set but SALESFLOW_KAFKA_SECURITY_PROTOCOL=PLAINTEXT"):
        client_options(Settings(kafka_ssl_cafile=pki["ca"]))


def test_a_connection_is_described_by_listener_mechanism_and_user_never_the_password(pki: dict[str, Path]) -> None:
    text = describe_connection(sasl_ssl(pki))
    assert text == (
        "Kafka at b-1.example.com:9096,b-2.example.com:9096 over the SASL_SSL listener with SASL "
        "mechanism SCRAM-SHA-512 as user 'salesflow'"
    )


def _verify_error(message: str) -> ssl.SSLCertVerificationError:
    error = ssl.SSLCertVerificationError(1, message)
    error.verify_message = message
    return error


@pytest.mark.parametrize(
    ("error", "reason", "text"),
    [
        (
            SaslAuthenticationFailed("Authentication failed during authentication due to invalid credentials"),
            "authentication",
            "authentication failed (Authentication failed during authentication",
        ),
        (
            UnsupportedSaslMechanismError(
                "Kafka broker does not support PLAIN sasl mechanism. Enabled mechanisms are: ['SCRAM-SHA-512']"
            ),
            "authentication",
            "set SALESFLOW_KAFKA_SASL_MECHANISM",
        ),
        (
            _verify_error("unable to get local issuer certificate"),
            "tls",
            "TLS error: the broker's certificate is not trusted (unable to get local issuer certificate)",
        ),
        (
            _verify_error("Hostname mismatch, certificate is not valid for 'b-1'"),
            "tls",
            "SALESFLOW_KAFKA_SSL_CHECK_HOSTNAME",
        ),
        (ConnectionResetError(), "tls", "is the listener really SASL_SSL (TLS)"),
        (ConnectionRefusedError(111, "Connect call failed"), "unreachable", "unreachable (Connect call failed)"),
        (TimeoutError(), "unreachable", "no answer within 10s"),
        (KafkaConnectionError("Connection at b-1:9096 closed"), "protocol", "the broker closed the connection"),
    ],
)
def test_connection_failures_are_explained_with_the_setting_to_fix(
    pki: dict[str, Path], error: BaseException, reason: str, text: str
) -> None:
    assert explain(sasl_ssl(pki), error, 10.0)[0] == reason
    assert text in explain(sasl_ssl(pki), error, 10.0)[1]
