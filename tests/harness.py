"""Run the pipeline's services as real processes (as they run in production), and wait on Postgres."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from salesflow.secrets import reveal
from salesflow.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a child process see exactly these settings."""
    env = dict(os.environ)
    for name, value in settings.model_dump().items():
        if value is not None:
            env[f"SALESFLOW_{name.upper()}"] = str(reveal(value))  # a SecretStr's real value, not its mask
            env.pop(f"SALESFLOW_{name.upper()}_FILE", None)  # the value given here wins over a file
    return env


class Service:
    """One ``salesflow <command>`` child process with its log in a file."""

    def __init__(self, command: str, settings: Settings, log_dir: Path) -> None:
        self.command = command
        self.settings = settings
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"{command}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.retired = False  # a supervisor leaves a retired service down

    def start(self) -> Service:
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed with the process
        self.process = subprocess.Popen(
            [sys.executable, "-m", "salesflow.cli.main", self.command],
            env=settings_env(self.settings),
            stdout=log,
            stderr=log,
            cwd=ROOT,
        )
        return self

    def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM, then wait; SIGKILL if it does not go."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def kill(self) -> None:
        """SIGKILL: no chance to flush or commit."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    async def wait_for_log(self, text: str, timeout: float = 60) -> None:
        async def logged() -> bool:
            return self.log_path.exists() and text in self.log_path.read_text(errors="replace")

        await wait_for(logged, timeout=timeout, what=f"{self.command} to log {text!r}")

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        return (
            "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:]) if self.log_path.exists() else ""
        )


async def wait_for(
    check: Callable[[], Awaitable[Any]], *, timeout: float = 60, every: float = 0.25, what: str = "condition"
) -> Any:
    """Poll ``check`` until it returns something truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")
