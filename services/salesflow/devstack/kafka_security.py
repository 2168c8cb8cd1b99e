"""A ``SASL_SSL`` client listener for the dev/test broker: SCRAM-SHA-256/512 and PLAIN over TLS.

The broker's certificate is signed by a throwaway CA (``tls.py``). SCRAM users are written into the
cluster metadata when the storage is formatted (``StorageTool format --add-scram``), as salted
passwords computed here, so no password is ever on a command line. PLAIN users live in the
listener's JAAS config inside ``server.properties`` (mode 0600; the broker logs that value as
``[hidden]``). The controller listener stays PLAINTEXT on loopback: only the broker talks to it.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .tls import ServerCertificate, make_ca, make_certificate

LISTENER = "SASL_SSL"
SCRAM_MECHANISMS = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}
MECHANISMS = (*SCRAM_MECHANISMS, "PLAIN")
SCRAM_ITERATIONS = 8192
INTER_BROKER_USER = "broker"
# JAAS values are double-quoted and --add-scram names are comma-separated: keep both unambiguous.
_SAFE = re.compile(r"^[A-Za-z0-9_.+@%=~^-]+$")


@dataclass(frozen=True)
class KafkaSecurity:
    """Users of the ``SASL_SSL`` listener and the folder of its certificate.

    ``users`` maps a name to its password; ``password_files`` to a file holding a random password,
    made on first use (the dev stack's way). Nothing is written before the broker needs it.
    """

    tls_dir: Path
    users: dict[str, str] = field(default_factory=dict)
    password_files: dict[str, Path] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, password in self.users.items():
            if not (_SAFE.match(name) and _SAFE.match(password)):
                raise ValueError(f"dev broker user {name!r}: use letters, digits and _.+@%=~^- only")

    @property
    def all_users(self) -> dict[str, str]:
        """The configured users plus the broker's own inter-broker user."""
        from_files = {name: read_or_make_password(path) for name, path in self.password_files.items()}
        return {INTER_BROKER_USER: self.inter_broker_password, **from_files, **self.users}

    @property
    def inter_broker_password(self) -> str:
        return read_or_make_password(self.tls_dir / "inter-broker.password")

    def certificate(self) -> ServerCertificate:
        """The broker's certificate, made on first use."""
        return make_certificate(make_ca(self.tls_dir), self.tls_dir, "kafka-broker")

    @property
    def ca_file(self) -> Path:
        return self.tls_dir / "salesflow-dev-ca.pem"


PLAINTEXT_LISTENERS = """\
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
"""


def listener_properties(sec: KafkaSecurity | None, port: int, cport: int) -> str:
    """The listener lines of ``server.properties``: PLAINTEXT without ``sec``, else SASL_SSL."""
    return PLAINTEXT_LISTENERS.format(port=port, cport=cport) if sec is None else server_properties(sec, port, cport)


def check_formatted_for(home: Path, protocol: str) -> None:
    """SCRAM users exist only from the storage format on: a state dir formatted for one listener
    type must not silently start as the other."""
    marker = home / "listener"
    formatted = marker.read_text().strip() if marker.exists() else "PLAINTEXT"
    if formatted != protocol:
        raise RuntimeError(
            f"{home} was formatted for a {formatted} listener, not {protocol}: "
            "use another SALESFLOW_STACK_DIR or `salesflow dev reset`"
        )


def mark_formatted_for(home: Path, protocol: str) -> None:
    (home / "listener").write_text(f"{protocol}\n")


def server_properties(sec: KafkaSecurity, port: int, cport: int) -> str:
    """The listener, SASL and TLS lines of ``server.properties`` for a secured broker."""
    cert = sec.certificate()
    broker_pw = sec.inter_broker_password
    scram_login = "org.apache.kafka.common.security.scram.ScramLoginModule required"
    plain_users = " ".join(f'user_{name}="{pw}"' for name, pw in sec.all_users.items())
    return "\n".join(
        [
            f"listeners={LISTENER}://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}",
            f"advertised.listeners={LISTENER}://127.0.0.1:{port}",
            f"inter.broker.listener.name={LISTENER}",
            f"listener.security.protocol.map={LISTENER}:{LISTENER},CONTROLLER:PLAINTEXT",
            f"sasl.enabled.mechanisms={','.join(MECHANISMS)}",
            "sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512",
            f"listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config={scram_login} "
            f'username="{INTER_BROKER_USER}" password="{broker_pw}";',
            f"listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config={scram_login};",
            "listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule "
            f'required username="{INTER_BROKER_USER}" password="{broker_pw}" {plain_users};',
            "ssl.keystore.type=PKCS12",
            f"ssl.keystore.location={cert.keystore}",
            f"ssl.keystore.password={cert.keystore_password}",
            f"ssl.key.password={cert.keystore_password}",
            "ssl.truststore.type=PEM",
            f"ssl.truststore.location={cert.ca.cert}",
            "ssl.client.auth=none",
            "ssl.endpoint.identification.algorithm=https",
            "",
        ]
    )


def format_arguments(sec: KafkaSecurity) -> list[str]:
    """``--add-scram`` arguments for every user and SCRAM mechanism, as salted passwords."""
    args: list[str] = []
    for name, password in sec.all_users.items():
        for mechanism, digest in SCRAM_MECHANISMS.items():
            salt = secrets.token_bytes(16)
            salted = hashlib.pbkdf2_hmac(digest, password.encode(), salt, SCRAM_ITERATIONS)
            b64 = base64.b64encode
            args += [
                "--add-scram",
                f"{mechanism}=[name={name},iterations={SCRAM_ITERATIONS},"
                f'salt="{b64(salt).decode()}",saltedpassword="{b64(salted).decode()}"]',
            ]
    return args


def admin_client_options(sec: KafkaSecurity) -> dict[str, Any]:
    """aiokafka options the stack's own readiness probe uses (as the inter-broker user)."""
    import ssl

    return {
        "security_protocol": LISTENER,
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": INTER_BROKER_USER,
        "sasl_plain_password": sec.inter_broker_password,
        "ssl_context": ssl.create_default_context(cafile=str(sec.certificate().ca.cert)),
    }


def dev_security(state_dir: Path, user: str = "salesflow") -> KafkaSecurity:
    """The dev stack's secured listener: one app user whose password is kept in a 0600 file."""
    tls_dir = state_dir / "tls"
    return KafkaSecurity(tls_dir=tls_dir, password_files={user: tls_dir / f"{user}.password"})


def client_env(sec: KafkaSecurity, user: str = "salesflow") -> dict[str, str]:
    """``SALESFLOW_KAFKA_*`` variables for an app client of this listener (password as a file path)."""
    return {
        "SALESFLOW_KAFKA_SECURITY_PROTOCOL": LISTENER,
        "SALESFLOW_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "SALESFLOW_KAFKA_SASL_USERNAME": user,
        "SALESFLOW_KAFKA_SASL_PASSWORD_FILE": str(sec.tls_dir / f"{user}.password"),
        "SALESFLOW_KAFKA_SSL_CAFILE": str(sec.ca_file),
    }


def read_or_make_password(path: Path) -> str:
    """A random password kept in ``path`` (made once, mode 0600)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(16))
        path.chmod(0o600)
    return path.read_text().strip()
