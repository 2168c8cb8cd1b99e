"""The local dev stack: one Kafka broker and one Postgres cluster under a single state dir.

State dir: ``$SALESFLOW_STACK_DIR``, default ``<repo root>/.stack``. Everything is idempotent:
``up()`` leaves running pieces alone, ``down()`` ignores stopped ones.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from salesflow.db.urls import mask_password

from . import jaeger, kafka, kafka_security, postgres
from .kafka import Echo, KafkaConfig
from .postgres import PostgresConfig


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def repo_root() -> Path:
    """The folder holding ``pyproject.toml`` above this module (falls back to the cwd)."""
    for parent in Path(__file__).resolve().parents:
        if (parent / "pyproject.toml").is_file():
            return parent
    return Path.cwd()


def stack_dir() -> Path:
    """``$SALESFLOW_STACK_DIR`` or ``<repo root>/.stack`` (absolute, not created)."""
    env = os.environ.get("SALESFLOW_STACK_DIR")
    return Path(env).expanduser().resolve() if env else repo_root() / ".stack"


def kafka_config() -> KafkaConfig:
    """The broker's config for the current environment."""
    return KafkaConfig.from_env(stack_dir())


def jaeger_config() -> jaeger.JaegerConfig:
    """The local Jaeger's config (``dev up --tracing``) for the current environment."""
    return jaeger.JaegerConfig.from_env(stack_dir())


def postgres_config() -> PostgresConfig:
    """The Postgres cluster's config for the current environment."""
    return PostgresConfig.from_env(stack_dir())


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    # Serialises concurrent up/down/reset (e.g. several pytest workers) on one state dir.
    root = stack_dir()
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@dataclass(frozen=True)
class StackStatus:
    """What is running, and where."""

    state_dir: Path
    kafka_running: bool
    kafka_pid: int | None
    kafka_bootstrap: str
    kafka_version: str
    postgres_running: bool
    database_url: str

    def lines(self) -> list[str]:
        """Human-readable summary, one line per piece."""
        k = f"running (pid {self.kafka_pid})" if self.kafka_running else "stopped"
        p = "running" if self.postgres_running else "stopped"
        return [
            f"state dir: {self.state_dir}",
            f"kafka {self.kafka_version}: {k}  {self.kafka_bootstrap}",
            f"postgres: {p}  {mask_password(self.database_url)}",
        ]


def status() -> StackStatus:
    """Report whether the broker and the cluster are running."""
    kc, pc = kafka_config(), postgres_config()
    pid = kafka.read_pid(kc)
    return StackStatus(
        state_dir=kc.state_dir,
        kafka_running=pid is not None,
        kafka_pid=pid,
        kafka_bootstrap=kc.bootstrap,
        kafka_version=kc.version,
        postgres_running=postgres.is_running(pc),
        database_url=pc.url,
    )


def ensure_kafka_jars(echo: Echo = _stderr) -> Path:
    """Copy the Kafka runtime jars named by ``pom.xml`` into ``<state>/kafka-<ver>/libs`` once."""
    cfg = kafka_config()
    if kafka.jars_complete(cfg):
        return cfg.libs
    if not shutil.which("mvn") or not shutil.which("java"):
        raise RuntimeError("java and mvn are needed: apt-get install maven default-jre-headless")
    tmp = cfg.libs.parent / "libs.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    echo(f"fetching Kafka {cfg.version} jars with Maven (first run only) ...")
    started = time.monotonic()
    proc = subprocess.run(
        [
            "mvn",
            "-q",
            "-B",
            "-f",
            str(kafka.POM),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={tmp}",
            "-DincludeScope=runtime",
        ],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        output = (proc.stdout + proc.stderr)[-5000:]
        raise RuntimeError(f"mvn failed ({proc.returncode}):\n{output}")
    # Swap in whole, then mark: an interrupted fetch never looks complete.
    shutil.rmtree(cfg.libs, ignore_errors=True)
    tmp.rename(cfg.libs)
    (cfg.libs.parent / ".complete").write_text(f"{cfg.version}\n")
    echo(f"fetched {len(list(cfg.libs.glob('*.jar')))} jars in {time.monotonic() - started:.1f}s")
    return cfg.libs


def ensure_prerequisites(echo: Echo = _stderr) -> None:
    """Install Java + Maven and Debian's ``postgresql`` when missing (root), fetch Kafka's jars."""
    # One after the other: two parallel apt-get runs would fight over dpkg's lock.
    if not shutil.which("java") or not shutil.which("mvn"):
        postgres.apt_install(["maven", "default-jre-headless"], echo)
    postgres.ensure_installed(echo)
    ensure_kafka_jars(echo)


def up(echo: Echo = _stderr, *, tracing: bool = False) -> dict[str, str]:
    """Start Kafka and Postgres (installing/fetching what is missing); wait until both answer.
    ``tracing``: a local Jaeger too (``devstack.jaeger``, built once), for ``OTEL_*`` exports.

    Returns ``{"kafka": "started"|"already running", "postgres": ...}``.
    """
    kc, pc = kafka_config(), postgres_config()
    with _locked(), concurrent.futures.ThreadPoolExecutor(2) as pool:
        ensure_prerequisites(echo)
        # Independent pieces: start them side by side, Kafka's JVM start dominates anyway.
        futures = {
            "kafka": pool.submit(kafka.start, kc, echo),
            "postgres": pool.submit(postgres.start, pc, echo),
        }
        result = {name: "started" if f.result() else "already running" for name, f in futures.items()}
        if tracing:
            result["jaeger"] = "started" if jaeger.start(jaeger_config(), echo) else "already running"
    for name, what in result.items():
        echo(f"{name}: {what}")
    return result


def down(echo: Echo = _stderr) -> dict[str, str]:
    """Stop both cleanly (broker: SIGTERM and wait; Postgres: ``pg_ctl stop -m fast``)."""
    kc, pc = kafka_config(), postgres_config()
    with _locked():
        result = {
            "kafka": "stopped" if kafka.stop(kc) else "not running",
            "postgres": "stopped" if postgres.stop(pc) else "not running",
            "jaeger": "stopped" if jaeger.stop(jaeger_config()) else "not running",
        }
    for name, what in result.items():
        echo(f"{name}: {what}")
    return result


def reset(echo: Echo = _stderr) -> None:
    """``down()`` and delete all state except the cached Kafka jars (``kafka-<version>/``)."""
    down(echo)
    root = stack_dir()
    with _locked():
        for entry in root.iterdir():
            if entry.name == ".lock" or (entry.is_dir() and entry.name.startswith(("kafka-", "jaeger-"))):
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    echo(f"reset {root} (jar cache kept)")


def env_exports(*, tracing: bool = False) -> dict[str, str]:
    """Environment variables that point the app at this stack (secrets as ``*_FILE`` paths)."""
    kc = kafka_config()
    exports = {
        "SALESFLOW_KAFKA_BOOTSTRAP_SERVERS": kc.bootstrap,
        "SALESFLOW_DATABASE_URL": postgres_config().url,
    }
    if kc.security is not None:
        exports.update(kafka_security.client_env(kc.security))
    if tracing:  # `dev env --tracing`: traces go to the local Jaeger (`dev up --tracing`)
        exports.update(jaeger.otel_env(jaeger_config()))
    return exports


def kafka_tool(
    main_class: str,
    args: list[str],
    timeout: float = 120.0,
) -> subprocess.CompletedProcess[str]:
    """Run a Kafka CLI tool from the cached jars, e.g.
    ``kafka_tool(kafka.CONSUMER_GROUP_COMMAND, ["--bootstrap-server", bs, "--list"])``.
    """
    cfg = kafka_config()
    if not kafka.jars_complete(cfg):
        with _locked():
            ensure_kafka_jars()
    return subprocess.run([*kafka.java_cmd(cfg, main_class), *args], capture_output=True, text=True, timeout=timeout)
