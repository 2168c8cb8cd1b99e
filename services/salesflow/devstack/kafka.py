"""A single-node Apache Kafka (KRaft, combined broker+controller) run from Maven Central jars.

Nothing here needs a Kafka distribution or Docker: the jars named by ``pom.xml`` (beside this
file) are copied into ``<state>/kafka-<version>/libs`` with Maven once, and the broker is a
plain ``java -cp 'libs/*' kafka.Kafka server.properties`` process started detached.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import os
import re
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from .kafka_properties import write_server_properties
from .kafka_security import (
    KafkaSecurity,
    admin_client_options,
    check_formatted_for,
    dev_security,
    format_arguments,
    mark_formatted_for,
)
from .local_service import LocalService, running_pid, stop_process

HERE = Path(__file__).resolve().parent
POM = HERE / "pom.xml"
BROKER_LOG4J = HERE / "log4j2.properties"
TOOLS_LOG4J = HERE / "tools-log4j2.properties"

# Main classes inside the 4.x jars (checked with `unzip -l`).
BROKER_MAIN = "kafka.Kafka"  # kafka_2.13
STORAGE_TOOL_MAIN = "kafka.tools.StorageTool"  # kafka_2.13
CONSUMER_GROUP_COMMAND = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"  # kafka-tools
TOPIC_COMMAND = "org.apache.kafka.tools.TopicCommand"  # kafka-tools

JVM_OPTS = ["-XX:+UseG1GC", "-Djava.awt.headless=true"]
Echo = Callable[[str], None]


def _noop(_msg: str) -> None:
    pass


def kafka_version(pom: Path = POM) -> str:
    """Return the Kafka version pinned by the ``kafka.version`` property of ``pom.xml``."""
    found = re.search(r"<kafka\.version>\s*([^<\s]+)\s*</kafka\.version>", pom.read_text())
    if not found:
        raise RuntimeError(f"{pom} has no <kafka.version> property")
    return found.group(1)


@dataclass(frozen=True)
class KafkaConfig(LocalService):
    """Where the broker lives, which loopback ports it uses, and whether its listener is secured.

    ``security`` None means a PLAINTEXT listener (the default); otherwise a ``SASL_SSL`` one.
    ``jar_dir`` lets a second broker (a test's) reuse another state dir's jar cache.
    """

    name: ClassVar[str] = "kafka"
    state_dir: Path
    port: int = 39092
    controller_port: int = 39093
    version: str = ""
    security: KafkaSecurity | None = None
    jar_dir: Path | None = None
    # (listen port, advertised port) of a second PLAINTEXT listener whose clients reach it through a
    # proxy (the nemesis's Toxiproxy): metadata fetched through it points them back at the proxy.
    proxied: tuple[int, int] | None = None

    @classmethod
    def from_env(cls, state_dir: Path) -> KafkaConfig:
        """Build the config from ``SALESFLOW_DEV_KAFKA_PORT`` / ``..._CONTROLLER_PORT`` and
        ``SALESFLOW_DEV_KAFKA_SECURITY`` (``PLAINTEXT``, the default, or ``SASL_SSL``)."""
        env = os.environ.get
        protocol = env("SALESFLOW_DEV_KAFKA_SECURITY", "PLAINTEXT").upper()
        if protocol not in ("PLAINTEXT", "SASL_SSL"):
            raise RuntimeError(f"SALESFLOW_DEV_KAFKA_SECURITY={protocol!r}: use PLAINTEXT or SASL_SSL")
        return cls(
            state_dir=state_dir,
            port=int(env("SALESFLOW_DEV_KAFKA_PORT", "39092")),
            controller_port=int(env("SALESFLOW_DEV_KAFKA_CONTROLLER_PORT", "39093")),
            version=kafka_version(),
            security=dev_security(state_dir) if protocol == "SASL_SSL" else None,
        )

    @property
    def protocol(self) -> str:
        return "PLAINTEXT" if self.security is None else "SASL_SSL"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def libs(self) -> Path:
        # Versioned so a version bump in pom.xml fetches a fresh set and reset() can keep it.
        if self.jar_dir is not None:
            return self.jar_dir
        return self.state_dir / f"kafka-{self.version}" / "libs"

    @property
    def log_file(self) -> Path:
        return self.home / "logs" / "server.log"


def jars_complete(cfg: KafkaConfig) -> bool:
    """True when a finished Maven fetch left the jars in ``cfg.libs``."""
    return (cfg.libs.parent / ".complete").exists() and any(cfg.libs.glob("kafka_2.13-*.jar"))


def java_cmd(cfg: KafkaConfig, main: str, log4j: Path = TOOLS_LOG4J, xmx: str = "256m") -> list[str]:
    """``java ... -cp '<libs>/*' <main>``: run any main class from the cached Kafka jars."""
    props = [f"-Dlog4j2.configurationFile={log4j}", f"-Dkafka.logs.dir={cfg.log_file.parent}"]
    return ["java", f"-Xmx{xmx}", *JVM_OPTS, *props, "-cp", f"{cfg.libs}/*", main]


def _format_storage(cfg: KafkaConfig, props: Path) -> None:
    """Format the log dir once; the presence of meta.properties means it was done."""
    if (cfg.home / "data" / "meta.properties").exists():
        check_formatted_for(cfg.home, cfg.protocol)
        return
    cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
    scram_users = format_arguments(cfg.security) if cfg.security else []
    # `--cluster-id=<id>`, not `-t <id>`: a URL-safe base64 id may start with "-" and read as an option.
    cluster = f"--cluster-id={cluster_id}"
    cmd = [*java_cmd(cfg, STORAGE_TOOL_MAIN, TOOLS_LOG4J), "format", cluster, "-c", str(props), *scram_users]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"Kafka storage format failed:\n{proc.stdout}{proc.stderr}")
    mark_formatted_for(cfg.home, cfg.protocol)


def read_pid(cfg: KafkaConfig) -> int | None:
    """Return the broker's pid if our broker process is alive, else None."""
    return running_pid(cfg.pid_file, BROKER_MAIN.encode())


def port_open(port: int) -> bool:
    """True when something accepts TCP connections on 127.0.0.1:``port``."""
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


async def _describe(bootstrap: str, options: dict[str, Any]) -> int:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000, **options)
    await admin.start()
    try:
        cluster = await admin.describe_cluster()
        await admin.list_topics()
        # Raises until __consumer_offsets exists and has a leader, so the first consumer group
        # of a test does not start with GroupCoordinatorNotAvailable retries.
        await admin.find_coordinator("salesflow-devstack-probe")
        return len(cluster.get("brokers", []))
    finally:
        await admin.close()


def probe(bootstrap: str, timeout: float = 15.0, security: KafkaSecurity | None = None) -> bool:
    """True when the broker answers real requests: DescribeCluster, Metadata, FindCoordinator."""
    options = admin_client_options(security) if security else {}
    # Run in a worker thread so this also works when called from inside a running event loop.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        try:
            job = pool.submit(asyncio.run, asyncio.wait_for(_describe(bootstrap, options), timeout))
            return job.result() > 0
        except Exception:
            return False


def tail(path: Path, lines: int = 40) -> str:
    """Last ``lines`` lines of a log file, for error messages."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"


def start(cfg: KafkaConfig, echo: Echo = _noop, timeout: float = 90.0) -> bool:
    """Start the broker detached and wait until it serves metadata.

    Returns False (and does nothing) when our broker is already running.
    """
    if read_pid(cfg):
        return False
    if port_open(cfg.port) or port_open(cfg.controller_port):
        raise RuntimeError(f"ports {cfg.port}/{cfg.controller_port} are taken by another process")
    if not jars_complete(cfg):
        raise RuntimeError(f"no Kafka jars in {cfg.libs}: run stack.ensure_prerequisites() first")
    props = write_server_properties(cfg)
    _format_storage(cfg, props)
    cfg.log_file.parent.mkdir(parents=True, exist_ok=True)
    cmd = [*java_cmd(cfg, BROKER_MAIN, BROKER_LOG4J, xmx="512m"), str(props)]
    with open(cfg.home / "logs" / "stdout.log", "ab") as out:
        # A new session so the broker outlives the CLI and its Ctrl-C.
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cfg.home,
            start_new_session=True,
        )
    cfg.pid_file.write_text(f"{proc.pid}\n")
    echo(f"kafka starting (pid {proc.pid}) ...")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        if port_open(cfg.port) and probe(cfg.bootstrap, timeout=5.0, security=cfg.security):
            return True
        time.sleep(0.5)
    stop(cfg)
    raise RuntimeError(
        f"Kafka not ready within {timeout:.0f}s (exit={proc.poll()}); tail of "
        f"{cfg.log_file} (JVM output: stdout.log beside it):\n{tail(cfg.log_file)}"
    )


def stop(cfg: KafkaConfig, timeout: float = 60.0) -> bool:
    """SIGTERM the broker (controlled shutdown) and wait; SIGKILL after ``timeout``. False when
    nothing was running."""
    return stop_process(cfg.pid_file, BROKER_MAIN.encode(), timeout)
