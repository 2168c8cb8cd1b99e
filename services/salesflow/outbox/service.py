"""Running the relay as a process: logs, metrics endpoint, SIGTERM/SIGINT, the loop."""

from __future__ import annotations

import asyncio
import logging
import signal

from prometheus_client import start_http_server

from salesflow import logs
from salesflow.outbox.metrics import OutboxMetrics
from salesflow.outbox.relay import Relay
from salesflow.outbox.settings import OutboxSettings
from salesflow.settings import Settings

log = logging.getLogger(__name__)


def run_relay(settings: Settings, config: OutboxSettings) -> None:
    """Run one relay until SIGTERM/SIGINT: it finishes the batch in hand (deleting what was
    acknowledged), releases the leader lock and exits."""
    logs.configure(settings.log_level, settings.log_format)
    metrics = OutboxMetrics()
    start_http_server(config.metrics_port, registry=metrics.registry)

    async def main() -> None:
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopping.set)
        log.info("outbox relay: started, standing by for the leader lock")
        await Relay(settings, config, metrics, stopping).run()
        log.info("outbox relay: stopped")

    asyncio.run(main())
