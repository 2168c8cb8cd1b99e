"""The worker and the projection as real processes (``salesflow worker`` / ``salesflow projection``),
as they run in production, each with an RSS sampler."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.memory import RssSampler
from salesflow.settings import Settings
from tests.harness import Service


@dataclass
class Running:
    service: Service
    rss: RssSampler

    def stop(self) -> float:
        """Stop it (SIGTERM) and return its peak RSS in MB."""
        peak = self.rss.peak_mb()
        self.rss.stop()
        self.service.stop()
        return peak


def start(command: str, settings: Settings, logs: Path) -> Running:
    service = Service(command, settings, logs).start()
    assert service.process is not None
    return Running(service=service, rss=RssSampler(service.process.pid).start())
