"""The pipeline on a secured cluster: Kafka over SASL_SSL (SCRAM) and Postgres over TLS (verify-full).

A broker and a Postgres of this module's own (own state dir, free ports, a throwaway CA) are started
once and stopped at the end. Secrets reach the services as *_FILE paths; none may appear in any output.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson
import pytest
from sqlalchemy import text

from salesflow.db.engine import create_engine
from salesflow.devstack import kafka, postgres, stack
from salesflow.devstack.kafka_security import KafkaSecurity
from salesflow.devstack.tls import make_ca, make_certificate
from salesflow.domain.events import EventType
from salesflow.errors import DatabaseConnectError, KafkaConnectError
from salesflow.kafka_check import verify_connection
from salesflow.settings import Settings
from salesflow.testing.factories import event_dict
from tests.conftest import SettingsFactory
from tests.harness import ROOT, settings_env, wait_for

pytestmark = pytest.mark.integration

RUN = uuid.uuid4().hex[:8]
KAFKA_USER = "salesflow-app"
KAFKA_PASSWORD = f"KfkPw-{RUN}-Zq81x"  # distinctive, so a leak is found by a plain substring search
DB_PASSWORD = f"PgPw-{RUN}-Wm27v"
SECRETS = (KAFKA_PASSWORD, DB_PASSWORD)


@dataclass
class SecureStack:
    root: Path
    kafka: kafka.KafkaConfig
    postgres: postgres.PostgresConfig
    ca: Path
    other_ca: Path  # an unrelated CA: what an untrusted certificate looks like to a client

    def password_file(self, name: str, value: str) -> Path:
        (self.root / "secrets").mkdir(exist_ok=True)
        (path := self.root / "secrets" / name).write_text(value + "\n")  # a newline, as `echo` leaves
        return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def secure_stack(endpoints: Any) -> Iterator[SecureStack]:
    # `endpoints` has made sure Java, the Kafka jars and PostgreSQL are there; reuse the jar cache.
    jars = stack.kafka_config().libs
    if not kafka.jars_complete(stack.kafka_config()):
        stack.ensure_kafka_jars()
    # Not under pytest's 0700 tmp: the `postgres` OS user must reach its data dir.
    root = Path(tempfile.mkdtemp(prefix="salesflow-secure-"))
    root.chmod(0o711)
    tls = root / "tls"
    kc = kafka.KafkaConfig(
        state_dir=root,
        port=_free_port(),
        controller_port=_free_port(),
        version=kafka.kafka_version(),
        jar_dir=jars,
        security=KafkaSecurity(tls_dir=tls, users={KAFKA_USER: KAFKA_PASSWORD}),
    )
    pc = postgres.PostgresConfig(
        state_dir=root,
        port=_free_port(),
        password=DB_PASSWORD,
        tls=make_certificate(make_ca(tls), tls, "postgres-server"),
    )
    other = make_ca(root / "other-ca", name="unrelated-ca")
    try:
        with ThreadPoolExecutor(2) as pool:
            for job in [pool.submit(kafka.start, kc), pool.submit(postgres.start, pc)]:
                job.result()
        assert kc.security is not None  # the secured config always has one
        yield SecureStack(root=root, kafka=kc, postgres=pc, ca=kc.security.ca_file, other_ca=other.cert)
    finally:
        kafka.stop(kc)
        postgres.stop(pc)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def secure_settings(secure_stack: SecureStack, settings_factory: SettingsFactory) -> Callable[..., Settings]:
    """Settings for the secured stack (unique topics and groups per call, like settings_factory)."""

    def make(**overrides: Any) -> Settings:
        return settings_factory(
            **{
                "kafka_bootstrap_servers": secure_stack.kafka.bootstrap,
                "kafka_security_protocol": "SASL_SSL",
                "kafka_sasl_mechanism": "SCRAM-SHA-512",
                "kafka_sasl_username": KAFKA_USER,
                "kafka_sasl_password": KAFKA_PASSWORD,
                "kafka_ssl_cafile": secure_stack.ca,
                "database_url": f"postgresql+asyncpg://salesflow@127.0.0.1:{secure_stack.postgres.port}/salesflow",
                "database_password": DB_PASSWORD,
                "database_sslmode": "verify-full",
                "database_ssl_rootcert": secure_stack.ca,
                **overrides,
            }
        )

    return make


def file_secret_env(stack_: SecureStack, settings: Settings, kafka_password: str = KAFKA_PASSWORD) -> dict[str, str]:
    """The environment of a service: every setting as a variable, but the secrets as *_FILE paths."""
    env = settings_env(settings)
    env["SALESFLOW_DATABASE_URL"] = f"postgresql+asyncpg://salesflow@127.0.0.1:{stack_.postgres.port}/salesflow"
    for name, value in (("KAFKA_SASL_PASSWORD", kafka_password), ("DATABASE_PASSWORD", DB_PASSWORD)):
        env.pop(f"SALESFLOW_{name}", None)
        env[f"SALESFLOW_{name}_FILE"] = str(stack_.password_file(f"{name.lower()}-{uuid.uuid4().hex[:6]}", value))
    return env


def salesflow(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "salesflow.cli.main", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@dataclass
class PipelineRun:
    settings: Settings
    events: list[dict[str, Any]]
    outputs: dict[str, str]
    exit_codes: dict[str, int]


@pytest.fixture(scope="module")
def pipeline_run(secure_stack: SecureStack, secure_settings: Callable[..., Settings]) -> PipelineRun:
    """db upgrade, topics create, worker, projection, produce file, config show: all over the secured stack."""
    settings = secure_settings()
    env = file_secret_env(secure_stack, settings)
    outputs: dict[str, str] = {}
    exit_codes: dict[str, int] = {}

    def record(name: str, proc: subprocess.CompletedProcess[str]) -> None:
        outputs[name] = proc.stdout + proc.stderr
        assert proc.returncode == 0, f"salesflow {name} failed:\n{outputs[name]}"

    record("db upgrade", salesflow("db", "upgrade", env=env))
    record("topics create", salesflow("topics", "create", env=env))
    logs = secure_stack.root / f"logs-{uuid.uuid4().hex[:6]}"
    logs.mkdir()
    services = {}
    for command in ("worker", "projection"):
        with open(logs / f"{command}.log", "wb") as log:
            services[command] = subprocess.Popen(
                [sys.executable, "-m", "salesflow.cli.main", command],
                env=env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
    events = [event_dict(event_type, "acme", n, lead_id=f"lead-{n}") for n, event_type in enumerate(EventType)]
    events += [event_dict(EventType.LEAD_CREATED, "globex", 10 + n, lead_id=f"lead-{n}") for n in range(4)]
    jsonl = logs / "events.jsonl"
    jsonl.write_bytes(b"\n".join(orjson.dumps(e) for e in events) + b"\n")
    try:
        record("produce file", salesflow("produce", "file", str(jsonl), env=env))
        asyncio.run(wait_for(lambda: _final_count(settings, events), timeout=90, what="every event to be final"))
        record("config show", salesflow("config", "show", env=env))
    finally:
        # Stopped here, so their logs are complete (shutdown included) before anything reads them.
        for command, process in services.items():
            process.send_signal(signal.SIGTERM)
            try:
                exit_codes[command] = process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                exit_codes[command] = process.wait()
            outputs[command] = (logs / f"{command}.log").read_text(errors="replace")
    return PipelineRun(settings=settings, events=events, outputs=outputs, exit_codes=exit_codes)


async def _scalar(settings: Settings, sql: str, **params: Any) -> Any:
    engine = create_engine(settings.database_url)
    try:
        async with engine.connect() as conn:
            return (await conn.execute(text(sql), params)).scalar_one()
    finally:
        await engine.dispose()


async def _final_count(settings: Settings, events: list[dict[str, Any]]) -> bool:
    final = "SELECT count(*) FROM events WHERE id = ANY(:ids) AND status <> 'pending'"
    count: int = await _scalar(settings, final, ids=[UUID(e["id"]) for e in events])
    return count == len(events)


async def test_events_go_end_to_end_over_sasl_ssl_and_verified_tls_to_postgres(pipeline_run: PipelineRun) -> None:
    settings, ids = pipeline_run.settings, [UUID(e["id"]) for e in pipeline_run.events]
    processed = "SELECT count(*) FROM events WHERE id = ANY(:ids) AND status = 'processed'"
    assert await _scalar(settings, processed, ids=ids) == len(ids)
    assert await _scalar(settings, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()") is True
    # The CLI's connection checks leave the worker's own event loop (and its SIGTERM handling) alone.
    assert pipeline_run.exit_codes == {"worker": 0, "projection": 0}


async def test_no_secret_appears_in_any_log_or_output(pipeline_run: PipelineRun, secure_stack: SecureStack) -> None:
    outputs = dict(pipeline_run.outputs)
    help_env = {**settings_env(pipeline_run.settings), "SALESFLOW_KAFKA_SASL_PASSWORD": KAFKA_PASSWORD}
    for command in ([], ["worker"], ["projection"], ["config", "show"], ["topics", "create"]):
        outputs[f"{' '.join(command)} --help"] = salesflow(*command, "--help", env=help_env).stdout
    # The broker and Postgres logs too: the broker must print its JAAS and keystore settings as [hidden].
    outputs["kafka server.log"] = secure_stack.kafka.log_file.read_text(errors="replace")
    outputs["postgres.log"] = secure_stack.postgres.log_file.read_text(errors="replace")
    assert "[^Worker]: Ready" in outputs["worker"], outputs["worker"][-2000:]  # the logs are real ones
    assert "SALESFLOW_KAFKA_SASL_PASSWORD" in outputs["config show"]
    leaks = [(name, secret) for name, out in outputs.items() for secret in SECRETS if secret in out]
    assert leaks == [], f"secrets found in: {sorted({name for name, _ in leaks})}"


@pytest.mark.parametrize("command", [["worker"], ["projection"], ["topics", "create"], ["produce", "demo"]])
def test_a_wrong_password_ends_each_command_at_once_with_a_clear_error(
    secure_stack: SecureStack, secure_settings: Callable[..., Settings], command: list[str]
) -> None:
    wrong = f"Wrong-{RUN}-pw"
    started = time.monotonic()
    proc = salesflow(*command, env=file_secret_env(secure_stack, secure_settings(), kafka_password=wrong), timeout=60)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output
    assert time.monotonic() - started < 30
    assert (
        f"cannot connect to Kafka at {secure_stack.kafka.bootstrap} over the SASL_SSL listener with SASL "
        f"mechanism SCRAM-SHA-512 as user '{KAFKA_USER}': authentication failed"
    ) in output
    assert "Traceback" not in output
    assert wrong not in output and KAFKA_PASSWORD not in output


def test_the_worker_itself_stops_rather_than_retrying_a_wrong_password(
    secure_stack: SecureStack, secure_settings: Callable[..., Settings]
) -> None:
    # Past the CLI's check (as when a password is rotated under a running deployment's feet).
    env = file_secret_env(secure_stack, secure_settings(), kafka_password=f"Wrong-{RUN}-pw")
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from salesflow import bootstrap; from salesflow.settings import "
            "Settings; bootstrap.run_worker(Settings())",
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output[-3000:]
    assert "SaslAuthenticationFailed" in output and "SCRAM-SHA-512" in output
    assert output.count("Unable connect to") <= 3  # no retry storm


@pytest.mark.parametrize("command", [["worker"], ["topics", "create"]])
def test_an_untrusted_broker_certificate_is_a_clear_tls_error(
    secure_stack: SecureStack, secure_settings: Callable[..., Settings], command: list[str]
) -> None:
    settings = secure_settings(kafka_ssl_cafile=secure_stack.other_ca)
    proc = salesflow(*command, env=file_secret_env(secure_stack, settings), timeout=60)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output
    assert (
        "over the SASL_SSL listener with SASL mechanism SCRAM-SHA-512 as user 'salesflow-app': TLS error: "
        "the broker's certificate is not trusted (unable to get local issuer certificate); trusted CAs: "
        f"{secure_stack.other_ca}"
    ) in output


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
async def test_every_sasl_mechanism_authenticates_and_rejects_a_wrong_password(
    secure_settings: Callable[..., Settings], mechanism: str
) -> None:
    await verify_connection(secure_settings(kafka_sasl_mechanism=mechanism))
    with pytest.raises(KafkaConnectError, match=f"mechanism {mechanism} .*authentication failed") as caught:
        await verify_connection(secure_settings(kafka_sasl_mechanism=mechanism, kafka_sasl_password="nope"))
    assert caught.value.reason == "authentication"


async def _select_one(settings: Settings) -> None:
    await _scalar(settings, "SELECT 1")


async def test_postgres_verify_full_with_the_ca_works_and_a_wrong_ca_fails_clearly(
    secure_stack: SecureStack, secure_settings: Callable[..., Settings]
) -> None:
    await _select_one(secure_settings())
    with pytest.raises(
        DatabaseConnectError,
        match=r"\(sslmode=verify-full\): TLS error: the server's certificate is "
        r"not trusted \(unable to get local issuer certificate\)",
    ):
        await _select_one(secure_settings(database_ssl_rootcert=secure_stack.other_ca))


async def test_postgres_refuses_plaintext_and_a_wrong_password_clearly(secure_settings: Callable[..., Any]) -> None:
    with pytest.raises(DatabaseConnectError, match=r"\(sslmode=disable\): pg_hba.conf rejects .* no encryption"):
        await _select_one(secure_settings(database_sslmode="disable"))
    with pytest.raises(DatabaseConnectError, match="password authentication failed") as caught:
        await _select_one(secure_settings(database_password=f"Wrong-{RUN}"))
    assert f"Wrong-{RUN}" not in str(caught.value)


def test_the_cli_reports_a_wrong_database_ca_in_one_line(
    secure_stack: SecureStack, secure_settings: Callable[..., Settings]
) -> None:
    settings = secure_settings(database_ssl_rootcert=secure_stack.other_ca)
    proc = salesflow("db", "upgrade", env=file_secret_env(secure_stack, settings))
    assert proc.returncode == 1
    assert "TLS error: the server's certificate is not trusted" in proc.stderr and "Traceback" not in proc.stderr
    assert DB_PASSWORD not in proc.stderr
