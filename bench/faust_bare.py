"""The Faust ceiling: a bare Faust agent per source topic that only acks (no decoding, no handlers, no
producing), as a process of its own. ``python -m bench.faust_bare COUNT`` reads the settings from the
environment, prints ``events_per_s=<n>`` once COUNT events are read, and exits.

Any engine that takes each event through Faust's stream lives under this line (issue 12).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from typing import Any

import faust

from salesflow.kafka_clients import faust_broker_options
from salesflow.settings import Settings


def main(count: int) -> None:
    settings = Settings()
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    app = faust.App(
        settings.processor_group,
        **faust_broker_options(settings),
        key_serializer="raw",
        value_serializer="raw",
        consumer_auto_offset_reset="earliest",
        topic_partitions=settings.topic_partitions,
        topic_disable_leader=True,
        topic_allow_declare=False,
        web_enabled=False,
        store="memory://",
        datadir=settings.worker_data_dir,
    )
    seen = [0]
    first = [0.0]

    async def only_ack(stream: Any) -> None:
        async for _ in stream:  # acked by Faust when the next one is taken
            if not seen[0]:
                first[0] = time.perf_counter()
            seen[0] += 1
            if seen[0] == count:
                print(f"events_per_s={(count - 1) / (time.perf_counter() - first[0]):.0f}", flush=True)
                # Stopping the app from inside its own agent waits on this very event: leave at once.
                os._exit(0)

    for topic_name in settings.topics.sources:
        topic = app.topic(topic_name, key_type=bytes, value_type=bytes)
        app.agent(topic, name=f"bare_{topic_name.replace('.', '_')}")(only_ack)
    worker = faust.Worker(app, loop=loop, loglevel="WARNING", quiet=True)
    worker.spinner = None
    worker.execute_from_commandline()


if __name__ == "__main__":
    main(int(sys.argv[1]))
