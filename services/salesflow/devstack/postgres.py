"""A throwaway PostgreSQL cluster run from Debian's ``postgresql`` binaries.

The cluster lives in ``<state>/postgres/data`` and listens on 127.0.0.1 only. PostgreSQL refuses
to run as root, so as root every server-side command runs as the ``postgres`` OS user (created
by the Debian package) through ``runuser``, and the cluster's files belong to that user.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from .kafka import Echo, port_open, tail
from .local_service import LocalService
from .postgres_tls import tls_settings
from .tls import ServerCertificate, make_ca, make_certificate

PG_ROOT = Path("/usr/lib/postgresql")
# Stops the Debian package from creating (and starting) its own `main` cluster on 5432.
CREATECLUSTER_CONF = Path("/etc/postgresql-common/createcluster.d/salesflow-devstack.conf")
Proc = subprocess.CompletedProcess[str]


def _noop(_msg: str) -> None:
    pass


@dataclass(frozen=True)
class PostgresConfig(LocalService):
    """Where the cluster lives, its loopback port and the app's role/database.

    With ``tls`` set, the server speaks TLS with that certificate and accepts TCP connections only
    over TLS, with password (SCRAM) authentication for every role but ``postgres`` (the stack's
    own bootstrap). Without it, it is the plain trust-everything dev cluster.
    """

    name: ClassVar[str] = "postgres"
    state_dir: Path
    port: int = 35432
    user: str = "salesflow"
    password: str = "salesflow"
    database: str = "salesflow"
    tls: ServerCertificate | None = None
    # The dev stack's way: a certificate of the dev CA in this folder, made on the first start.
    tls_dir: Path | None = None

    def __post_init__(self) -> None:
        if "'" in self.password:
            raise ValueError("the dev cluster's password cannot contain a single quote")

    @classmethod
    def from_env(cls, state_dir: Path) -> PostgresConfig:
        """Build the config from ``SALESFLOW_DEV_POSTGRES_PORT`` and ``SALESFLOW_DEV_POSTGRES_TLS``
        (``1``: TLS with a certificate of the stack's dev CA, see ``tls.py``)."""
        port = int(os.environ.get("SALESFLOW_DEV_POSTGRES_PORT", "35432"))
        on = os.environ.get("SALESFLOW_DEV_POSTGRES_TLS", "0").lower() in ("1", "true", "yes", "on")
        return cls(state_dir=state_dir, port=port, tls_dir=state_dir / "tls" if on else None)

    @property
    def secured(self) -> bool:
        return self.tls is not None or self.tls_dir is not None

    def certificate(self) -> ServerCertificate:
        """The server's certificate (made on first use in ``tls_dir``)."""
        if self.tls is not None:
            return self.tls
        assert self.tls_dir is not None
        return make_certificate(make_ca(self.tls_dir), self.tls_dir, "postgres-server")

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def log_file(self) -> Path:
        return self.home / "postgres.log"

    @property
    def socket_dir(self) -> Path:
        # A unix socket path must fit in 107 bytes; fall back to /tmp for deep state dirs.
        run = self.home / "run"
        if len(f"{run}/.s.PGSQL.{self.port}.lock") < 100:
            return run
        return Path("/tmp") / f"salesflow-pg-{hashlib.sha1(str(run).encode()).hexdigest()[:10]}"

    @property
    def url(self) -> str:
        ca = self.tls.ca.cert if self.tls else (self.tls_dir / "salesflow-dev-ca.pem" if self.tls_dir else None)
        tls = f"?sslmode=verify-full&sslrootcert={ca}" if ca else ""
        return f"postgresql+asyncpg://{self.user}:{self.password}@127.0.0.1:{self.port}/{self.database}{tls}"


def apt_install(packages: list[str], echo: Echo = _noop) -> None:
    """Install Debian packages (root only); runs ``apt-get update`` only when the first try fails.

    Also used by :func:`salesflow.devstack.stack.up` for Java and Maven.
    """
    if os.geteuid() != 0:
        raise RuntimeError(f"missing {' '.join(packages)}: apt-get install them, or run as root")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "--no-install-recommends", *packages]
    echo(f"installing {' '.join(packages)} with apt-get ...")
    if subprocess.run(cmd, env=env, capture_output=True).returncode != 0:
        # A fresh image usually has empty package lists: update once, then retry for real.
        subprocess.run(["apt-get", "update"], env=env, check=True, capture_output=True)
        subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)


def find_bin_dir() -> Path | None:
    """Highest-versioned ``/usr/lib/postgresql/<major>/bin`` that has ``initdb``, if any."""
    found = [p.parent for p in PG_ROOT.glob("*/bin/initdb") if p.parent.parent.name.isdigit()]
    return max(found, key=lambda b: int(b.parent.name)) if found else None


def ensure_installed(echo: Echo = _noop) -> Path:
    """Return the server bin dir, installing Debian's ``postgresql`` first when it is missing."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        if os.geteuid() == 0 and not CREATECLUSTER_CONF.exists():
            CREATECLUSTER_CONF.parent.mkdir(parents=True, exist_ok=True)
            CREATECLUSTER_CONF.write_text("create_main_cluster = false\n")
        apt_install(["postgresql"], echo)
        bin_dir = find_bin_dir()
        if bin_dir is None:
            raise RuntimeError(f"postgresql installed but no initdb under {PG_ROOT}")
    return bin_dir


def _as_owner(cmd: list[str]) -> list[str]:
    """Prefix a server-side command so it runs as the cluster's owner."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def _run(cmd: list[str], cfg: PostgresConfig, check: bool = True) -> Proc:
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cfg.home)
    if check and proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}"
            f"{proc.stderr}\n--- {cfg.log_file} ---\n{tail(cfg.log_file, 20)}"
        )
    return proc


def _prepare_dirs(cfg: PostgresConfig) -> None:
    """Create the cluster's folders and, as root, hand them to the ``postgres`` user."""
    for d in (cfg.home, cfg.socket_dir):
        d.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return
    pg = pwd.getpwnam("postgres")
    cfg.state_dir.chmod(cfg.state_dir.stat().st_mode | 0o011)  # let `postgres` traverse it
    for d in (cfg.home, cfg.socket_dir):
        os.chown(d, pg.pw_uid, pg.pw_gid)
    if subprocess.run(_as_owner(["test", "-w", str(cfg.home)])).returncode != 0:
        raise RuntimeError(
            f"the postgres OS user cannot reach {cfg.home}: some parent folder is not "
            "traversable (o+x); set SALESFLOW_STACK_DIR to another place"
        )


def _write_conf(cfg: PostgresConfig) -> None:
    """(Re)write our settings file and include it from postgresql.conf once."""
    conf = cfg.data / "salesflow.conf"
    conf.write_text(
        "# Written by salesflow.devstack on every `up`; throwaway dev cluster settings.\n"
        "listen_addresses = '127.0.0.1'\n"
        f"port = {cfg.port}\n"
        f"unix_socket_directories = '{cfg.socket_dir}'\n"
        "max_connections = 200\n"
        "shared_buffers = 128MB\n"
        # Durability is pointless for a dev cluster; speed matters.
        "fsync = off\n"
        "synchronous_commit = off\n"
        "full_page_writes = off\n"
        "log_min_messages = warning\n"
        "log_min_error_statement = error\n"
        "timezone = 'UTC'\n"
    )
    if cfg.secured:
        with conf.open("a") as fh:
            fh.write(tls_settings(cfg))
    main = cfg.data / "postgresql.conf"
    text = main.read_text()
    if "include_if_exists = 'salesflow.conf'" not in text:
        main.write_text(text + "\ninclude_if_exists = 'salesflow.conf'\n")
    if os.geteuid() == 0:
        pg = pwd.getpwnam("postgres")
        os.chown(conf, pg.pw_uid, pg.pw_gid)


def _server(cfg: PostgresConfig, tool: str, *args: str, check: bool = True) -> Proc:
    """Run a server-side tool (initdb, pg_ctl) on our data dir, as the cluster's owner."""
    cmd = _as_owner([str(ensure_installed() / tool), "-D", str(cfg.data), *args])
    return _run(cmd, cfg, check=check)


def is_running(cfg: PostgresConfig) -> bool:
    """True when ``pg_ctl status`` finds a live postmaster for our data dir."""
    if find_bin_dir() is None or not (cfg.data / "PG_VERSION").exists():
        return False
    return _server(cfg, "pg_ctl", "status", check=False).returncode == 0


def wait_ready(cfg: PostgresConfig, timeout: float = 60.0) -> None:
    """Poll ``pg_isready`` on 127.0.0.1 until the server accepts connections."""
    pg_isready = str((find_bin_dir() or Path("/usr/bin")) / "pg_isready")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cmd = [pg_isready, "-q", "-h", "127.0.0.1", "-p", str(cfg.port), "-t", "2"]
        if subprocess.run(cmd).returncode == 0:
            return
        time.sleep(0.3)
    raise RuntimeError(f"Postgres not ready after {timeout:.0f}s; tail of {cfg.log_file}:\n{tail(cfg.log_file)}")


def psql(cfg: PostgresConfig, sql: str, user: str = "postgres", database: str = "postgres") -> str:
    """Run SQL through ``psql`` over TCP (trust auth) and return its unaligned output."""
    opts = ["-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(cfg.port)]
    cmd = [str(ensure_installed() / "psql"), *opts, "-U", user, "-d", database, "-c", sql]
    return _run(cmd, cfg).stdout.strip()


def _bootstrap(cfg: PostgresConfig) -> None:
    """Create the app role (superuser, with password) and database, idempotently."""
    psql(
        cfg,
        f"""DO $$ BEGIN
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{cfg.user}') THEN
          CREATE ROLE {cfg.user} LOGIN SUPERUSER PASSWORD '{cfg.password}';
        ELSE
          ALTER ROLE {cfg.user} LOGIN SUPERUSER PASSWORD '{cfg.password}';
        END IF; END $$;""",
    )
    if not psql(cfg, f"SELECT 1 FROM pg_database WHERE datname = '{cfg.database}'"):
        psql(cfg, f"CREATE DATABASE {cfg.database} OWNER {cfg.user}")


def start(cfg: PostgresConfig, echo: Echo = _noop) -> bool:
    """Init the cluster if needed, start it and create role/database.

    Returns False (and only re-checks the role/database) when it was already running.
    """
    bin_dir = ensure_installed(echo)
    if is_running(cfg):
        wait_ready(cfg)
        _bootstrap(cfg)
        return False
    if port_open(cfg.port):
        raise RuntimeError(f"port {cfg.port} is taken by another process")
    _prepare_dirs(cfg)
    if not (cfg.data / "PG_VERSION").exists():
        shutil.rmtree(cfg.data, ignore_errors=True)  # a half-made cluster from an interrupted run
        echo(f"initdb {cfg.data} ({bin_dir.parent.name}) ...")
        opts = "-U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync --no-instructions"
        _server(cfg, "initdb", *opts.split())
    _write_conf(cfg)
    echo("postgres starting ...")
    _server(cfg, "pg_ctl", "-l", str(cfg.log_file), "-w", "-t", "60", "start")
    wait_ready(cfg)
    _bootstrap(cfg)
    return True


def stop(cfg: PostgresConfig) -> bool:
    """``pg_ctl stop -m fast``; returns False when it was not running."""
    if not is_running(cfg):
        return False
    _server(cfg, "pg_ctl", "-m", "fast", "-w", "-t", "60", "stop")
    return True
