"""TLS for the dev/test Postgres cluster: its certificate, a pg_hba that takes TCP over TLS only, settings."""

from __future__ import annotations

import os
import pwd
import shutil
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .postgres import PostgresConfig


def tls_settings(cfg: PostgresConfig) -> str:
    """Copy the certificate where the server may read it (the key must be its own, mode 0600),
    write a pg_hba that allows TCP over TLS only, and return the settings that use both."""
    certificate = cfg.certificate()
    folder = cfg.home / "tls"
    folder.mkdir(exist_ok=True)
    cert, key, hba = folder / "server.pem", folder / "server-key.pem", folder / "pg_hba.conf"
    shutil.copyfile(certificate.cert, cert)
    shutil.copyfile(certificate.key, key)
    hba.write_text(
        "# Written by salesflow.devstack: TCP only over TLS; passwords (SCRAM) for the app's roles.\n"
        "local   all all                     trust\n"
        "hostssl all postgres  127.0.0.1/32  trust\n"
        "hostssl all all       127.0.0.1/32  scram-sha-256\n"
        "host    all all       127.0.0.1/32  reject\n"
    )
    key.chmod(0o600)
    if os.geteuid() == 0:
        pg = pwd.getpwnam("postgres")
        for path in (folder, cert, key, hba):
            os.chown(path, pg.pw_uid, pg.pw_gid)
    return (
        f"ssl = on\nssl_cert_file = '{cert}'\nssl_key_file = '{key}'\nhba_file = '{hba}'\n"
        "password_encryption = 'scram-sha-256'\n"
    )
