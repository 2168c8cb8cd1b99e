"""Resident memory of a service process: samples while it runs, and the kernel's own peak."""

from __future__ import annotations

import asyncio
import statistics
import time
from contextlib import suppress

import psutil

MB = 1024 * 1024


class RssSampler:
    """Samples a process's RSS every ``every`` seconds in the background, with the time of each."""

    def __init__(self, pid: int, every: float = 0.5) -> None:
        self.process = psutil.Process(pid)
        self.every = every
        self.samples: list[tuple[float, float]] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> RssSampler:
        self._task = asyncio.create_task(self._sample())
        return self

    async def _sample(self) -> None:
        while True:
            with suppress(psutil.Error):
                self.samples.append((time.monotonic(), self.process.memory_info().rss / MB))
            await asyncio.sleep(self.every)

    def peak_mb(self) -> float:
        """The high-water mark the kernel keeps (VmHWM), so a spike between samples is not missed."""
        try:
            with open(f"/proc/{self.process.pid}/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) / 1024
        except OSError:
            pass
        return max((rss for _, rss in self.samples), default=0.0)

    def steady_mb(self, since: float) -> float:
        """The median RSS of the samples taken since ``since`` (time.monotonic())."""
        window = [rss for at, rss in self.samples if at >= since]
        return statistics.median(window) if window else 0.0

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
