"""A local stack service's files (one folder under the stack's state dir, named after it) and its
process, found by its pid file."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path
from typing import ClassVar


class LocalService:
    """A mixin for a service's frozen config dataclass (``state_dir`` is its field): ``home`` is
    ``<state_dir>/<name>``, its pid file ``<home>/<name>.pid``."""

    name: ClassVar[str]
    state_dir: Path

    @property
    def home(self) -> Path:
        return self.state_dir / self.name

    @property
    def pid_file(self) -> Path:
        return self.home / f"{self.name}.pid"


def running_pid(pid_file: Path, marker: bytes) -> int | None:
    """The pid in ``pid_file`` while that process runs and its command line holds ``marker``; None
    for a stale file, a zombie (reaped here if it is our own child) or a recycled pid."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our own exited child
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    if stat.rsplit(")", 1)[-1].split()[0] == "Z" or marker not in cmdline:
        return None
    return pid


def stop_process(pid_file: Path, marker: bytes, timeout: float) -> bool:
    """SIGTERM the process (a clean shutdown) and wait until it is gone, SIGKILL after ``timeout``;
    False when it was not running."""
    pid = running_pid(pid_file, marker)
    if pid is None:
        pid_file.unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while running_pid(pid_file, marker):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
    pid_file.unlink(missing_ok=True)
    return True
