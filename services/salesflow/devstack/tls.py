"""Throwaway certificates for the local stack's secured listeners, made with ``openssl``.

A private CA signs one server certificate for ``127.0.0.1`` / ``localhost``; the broker gets it as a
PKCS#12 keystore, Postgres as PEM files, and clients trust the CA file. A second, unrelated CA (or a
client certificate) can be made the same way to test what an untrusted certificate looks like.
"""

from __future__ import annotations

import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

DAYS = "30"  # a test or dev certificate needs no longer life


@dataclass(frozen=True)
class CertificateAuthority:
    """A CA's certificate (what clients trust) and its key (what signs)."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class ServerCertificate:
    """A certificate signed by ``ca``, its key, and the same pair as a password-protected PKCS#12."""

    ca: CertificateAuthority
    cert: Path
    key: Path
    keystore: Path
    keystore_password: str


def _openssl(*args: str, cwd: Path) -> None:
    proc = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed ({proc.returncode}):\n{proc.stderr}")


def make_ca(folder: Path, name: str = "salesflow-dev-ca") -> CertificateAuthority:
    """Create (once) a self-signed CA in ``folder``: ``<name>.pem`` and ``<name>-key.pem``."""
    folder.mkdir(parents=True, exist_ok=True)
    ca = CertificateAuthority(cert=folder / f"{name}.pem", key=folder / f"{name}-key.pem")
    if ca.cert.exists() and ca.key.exists():
        return ca
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        DAYS,
        "-subj",
        f"/CN={name}",
        "-keyout",
        str(ca.key),
        "-out",
        str(ca.cert),
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        cwd=folder,
    )
    ca.key.chmod(0o600)
    return ca


def make_certificate(
    ca: CertificateAuthority,
    folder: Path,
    name: str,
    hosts: tuple[str, ...] = ("127.0.0.1", "localhost"),
    client: bool = False,
) -> ServerCertificate:
    """Create (once) a certificate for ``hosts`` signed by ``ca``, plus a PKCS#12 keystore of it."""
    folder.mkdir(parents=True, exist_ok=True)
    cert, key, csr = folder / f"{name}.pem", folder / f"{name}-key.pem", folder / f"{name}.csr"
    keystore, password_file = folder / f"{name}.p12", folder / f"{name}.p12.password"
    if not (cert.exists() and key.exists() and keystore.exists() and password_file.exists()):
        san = ",".join(f"IP:{h}" if h.replace(".", "").isdigit() else f"DNS:{h}" for h in hosts)
        usage = "clientAuth" if client else "serverAuth"
        extensions = folder / f"{name}.ext"
        extensions.write_text(f"subjectAltName={san}\nextendedKeyUsage={usage}\nbasicConstraints=CA:FALSE\n")
        _openssl(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            f"/CN={hosts[0]}",
            "-keyout",
            str(key),
            "-out",
            str(csr),
            cwd=folder,
        )
        _openssl(
            "x509",
            "-req",
            "-in",
            str(csr),
            "-CA",
            str(ca.cert),
            "-CAkey",
            str(ca.key),
            "-CAcreateserial",
            "-days",
            DAYS,
            "-extfile",
            str(extensions),
            "-out",
            str(cert),
            cwd=folder,
        )
        password_file.write_text(secrets.token_hex(16))
        password_file.chmod(0o600)
        # PKCS#12 is what a JVM keystore reads without extra tools (keytool is not needed).
        _openssl(
            "pkcs12",
            "-export",
            "-in",
            str(cert),
            "-inkey",
            str(key),
            "-name",
            name,
            "-passout",
            f"file:{password_file}",
            "-out",
            str(keystore),
            cwd=folder,
        )
        key.chmod(0o600)
    return ServerCertificate(
        ca=ca, cert=cert, key=key, keystore=keystore, keystore_password=password_file.read_text().strip()
    )
