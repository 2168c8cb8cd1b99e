"""A local Jaeger (v2, all in one: OTLP receiver, memory storage, UI) for ``salesflow dev up --tracing``.

Installed the way the stack installs Kafka: built once from its Go module into the state dir's
cache, ``<state>/jaeger-<version>/bin/jaeger`` (kept by ``salesflow dev reset``), then run detached
with ``jaeger.yaml`` (beside this file) on loopback ports. Building needs Go (1.24 or newer) on the
PATH; ``go install`` refuses this module (its go.mod has replace directives), so the build goes
through a throwaway module that names it as a tool (``go get -tool``), then ``go build``.
Measured here: 30 s to fetch the modules and 243 s to build, on 2 shared cores (``nice -n 10``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from .kafka import port_open, tail
from .local_service import LocalService, running_pid, stop_process

VERSION = "v1.75.0"
MODULE = "github.com/jaegertracing/jaeger/cmd/jaeger"
CONFIG = Path(__file__).resolve().parent / "jaeger.yaml"
Echo = Callable[[str], None]


@dataclass(frozen=True)
class JaegerConfig(LocalService):
    name: ClassVar[str] = "jaeger"
    state_dir: Path
    ui_port: int = 36686
    otlp_http_port: int = 34318
    otlp_grpc_port: int = 34317
    query_grpc_port: int = 36685

    @classmethod
    def from_env(cls, state_dir: Path) -> JaegerConfig:
        """Ports from ``SALESFLOW_DEV_JAEGER_UI_PORT`` / ``..._OTLP_HTTP_PORT`` / ``..._OTLP_GRPC_PORT``."""
        env = os.environ.get
        return cls(
            state_dir,
            ui_port=int(env("SALESFLOW_DEV_JAEGER_UI_PORT", "36686")),
            otlp_http_port=int(env("SALESFLOW_DEV_JAEGER_OTLP_HTTP_PORT", "34318")),
            otlp_grpc_port=int(env("SALESFLOW_DEV_JAEGER_OTLP_GRPC_PORT", "34317")),
        )

    @property
    def binary(self) -> Path:
        return self.state_dir / f"jaeger-{VERSION}" / "bin" / "jaeger"

    @property
    def log_file(self) -> Path:
        return self.home / "jaeger.log"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.ui_port}"

    @property
    def otlp_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.otlp_http_port}"


def ensure_binary(cfg: JaegerConfig, echo: Echo) -> Path:
    """Build Jaeger into the cache once (a few minutes); later calls return at once."""
    if cfg.binary.is_file():
        return cfg.binary
    go = shutil.which("go") or ("/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").is_file() else None)
    if go is None:
        raise RuntimeError("building Jaeger needs Go 1.24 or newer on the PATH (https://go.dev/doc/install)")
    build = cfg.binary.parent.parent / "build"
    shutil.rmtree(build, ignore_errors=True)
    build.mkdir(parents=True)
    env = {**os.environ, "GOFLAGS": "-buildvcs=false"}
    partial = cfg.binary.with_suffix(".partial")
    steps = [
        [go, "mod", "init", "salesflow.local/jaeger"],
        [go, "get", "-tool", f"{MODULE}@{VERSION}"],
        ["nice", "-n", "10", go, "build", "-o", str(partial), MODULE],
    ]
    echo(f"building Jaeger {VERSION} from its Go module (first run only, a few minutes) ...")
    started = time.monotonic()
    for step in steps:
        done = subprocess.run(step, cwd=build, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(step)} failed ({done.returncode}):\n{(done.stdout + done.stderr)[-4000:]}")
    partial.rename(cfg.binary)  # whole or not at all: an interrupted build never looks complete
    shutil.rmtree(build, ignore_errors=True)
    echo(f"built {cfg.binary} in {time.monotonic() - started:.0f}s")
    return cfg.binary


def read_pid(cfg: JaegerConfig) -> int | None:
    """Our Jaeger's pid while it runs, else None."""
    return running_pid(cfg.pid_file, str(cfg.binary).encode())


def start(cfg: JaegerConfig, echo: Echo, timeout: float = 60.0) -> bool:
    """Start Jaeger detached and wait for its query API; False when it already runs."""
    if read_pid(cfg):
        return False
    for port in (cfg.ui_port, cfg.otlp_http_port, cfg.otlp_grpc_port, cfg.query_grpc_port):
        if port_open(port):
            raise RuntimeError(f"port {port} is taken by another process")
    ensure_binary(cfg, echo)
    cfg.home.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "SALESFLOW_JAEGER_UI_PORT": str(cfg.ui_port),
        "SALESFLOW_JAEGER_QUERY_GRPC_PORT": str(cfg.query_grpc_port),
        "SALESFLOW_JAEGER_OTLP_HTTP_PORT": str(cfg.otlp_http_port),
        "SALESFLOW_JAEGER_OTLP_GRPC_PORT": str(cfg.otlp_grpc_port),
    }
    with open(cfg.log_file, "ab") as out:
        proc = subprocess.Popen(
            [str(cfg.binary), f"--config=file:{CONFIG}"],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # outlives the CLI, as the broker does
        )
    cfg.pid_file.write_text(f"{proc.pid}\n")
    echo(f"jaeger starting (pid {proc.pid}) ...")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if _answers(f"{cfg.ui_url}/api/services"):
            return True
        time.sleep(0.3)
    stop(cfg)
    raise RuntimeError(f"Jaeger not ready within {timeout:.0f}s (exit={proc.poll()}):\n{tail(cfg.log_file)}")


def stop(cfg: JaegerConfig, timeout: float = 20.0) -> bool:
    """SIGTERM our Jaeger and wait for it to exit; False when it was not running."""
    return stop_process(cfg.pid_file, str(cfg.binary).encode(), timeout)


def otel_env(cfg: JaegerConfig) -> dict[str, str]:
    """What points a service's traces at this Jaeger (OTLP over HTTP)."""
    return {"OTEL_EXPORTER_OTLP_ENDPOINT": cfg.otlp_endpoint, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False
