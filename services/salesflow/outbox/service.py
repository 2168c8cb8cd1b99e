"""Running the relay as a process: logs, metrics endpoint, SIGTERM/SIGINT, the loop."""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
from typing import NoReturn

from prometheus_client import start_http_server

from salesflow import logs
from salesflow.outbox.outbox_settings import OutboxSettings
from salesflow.outbox.relay import Relay, RelayFailed
from salesflow.outbox.relay_metrics import OutboxMetrics
from salesflow.settings import Settings

log = logging.getLogger(__name__)

EXIT_FAILED = 1  # a permanent error: the relay logged one line saying why


def run_relay(settings: Settings, config: OutboxSettings) -> None:
    """Run one relay until SIGTERM/SIGINT: it finishes the batch in hand (deleting what was
    acknowledged), releases the leader lock and exits. A permanent error (the metrics port taken, the
    outbox table missing, a privilege revoked, Kafka refusing the relay) ends it with one error line
    and exit status 1."""
    logs.configure(settings.log_level, settings.log_format)
    metrics = OutboxMetrics()
    try:
        server, _ = start_http_server(config.metrics_port, registry=metrics.registry)
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        _stop(
            f"outbox relay stopped: the metrics port {config.metrics_port} is in use "
            "(SALESFLOW_OUTBOX_METRICS_PORT); give each relay on this host a port of its own, or 0 for any free one"
        )

    async def main() -> None:
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopping.set)
        log.info("outbox relay: started, metrics on port %d, standing by for the leader lock", server.server_port)
        await Relay(settings, config, metrics, stopping).run()
        log.info("outbox relay: stopped")

    try:
        asyncio.run(main())
    except RelayFailed as exc:
        _stop(str(exc))


def _stop(reason: str) -> NoReturn:
    log.error("%s", reason)
    raise SystemExit(EXIT_FAILED)
