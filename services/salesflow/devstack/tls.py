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
    files = _CertificateFiles.of(folder, name)
    if not files.complete():
        _request(files, hosts[0])
        _sign(files, ca, hosts, client)
        files.password.write_text(secrets.token_hex(16))
        files.password.chmod(0o600)
        _export_keystore(files)
        files.key.chmod(0o600)
    return ServerCertificate(
        ca=ca,
        cert=files.cert,
        key=files.key,
        keystore=files.keystore,
        keystore_password=files.password.read_text().strip(),
    )


@dataclass(frozen=True)
class _CertificateFiles:
    """The files of certificate ``name`` in ``folder``, each made by one of the steps below."""

    folder: Path
    name: str
    key: Path
    csr: Path
    extensions: Path
    cert: Path
    keystore: Path
    password: Path

    @classmethod
    def of(cls, folder: Path, name: str) -> _CertificateFiles:
        suffixes = ("-key.pem", ".csr", ".ext", ".pem", ".p12", ".p12.password")
        return cls(folder, name, *(folder / f"{name}{suffix}" for suffix in suffixes))

    def complete(self) -> bool:
        return all(path.exists() for path in (self.cert, self.key, self.keystore, self.password))


def _request(files: _CertificateFiles, common_name: str) -> None:
    """A new key and a certificate signing request for it."""
    _openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        f"/CN={common_name}",
        "-keyout",
        str(files.key),
        "-out",
        str(files.csr),
        cwd=files.folder,
    )


def _sign(files: _CertificateFiles, ca: CertificateAuthority, hosts: tuple[str, ...], client: bool) -> None:
    """The request signed by ``ca``, for ``hosts`` (IP addresses or DNS names), as a server or a client."""
    san = ",".join(f"IP:{h}" if h.replace(".", "").isdigit() else f"DNS:{h}" for h in hosts)
    usage = "clientAuth" if client else "serverAuth"
    files.extensions.write_text(f"subjectAltName={san}\nextendedKeyUsage={usage}\nbasicConstraints=CA:FALSE\n")
    _openssl(
        "x509",
        "-req",
        "-in",
        str(files.csr),
        "-CA",
        str(ca.cert),
        "-CAkey",
        str(ca.key),
        "-CAcreateserial",
        "-days",
        DAYS,
        "-extfile",
        str(files.extensions),
        "-out",
        str(files.cert),
        cwd=files.folder,
    )


def _export_keystore(files: _CertificateFiles) -> None:
    # PKCS#12 is what a JVM keystore reads without extra tools (keytool is not needed).
    _openssl(
        "pkcs12",
        "-export",
        "-in",
        str(files.cert),
        "-inkey",
        str(files.key),
        "-name",
        files.name,
        "-passout",
        f"file:{files.password}",
        "-out",
        str(files.keystore),
        cwd=files.folder,
    )
