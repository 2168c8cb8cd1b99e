"""What tracing costs the batch core: ``python -m bench.tracing [--events 20000] [--rounds 5]``.

The records and the core of ``bench.core`` (default handlers, metrics, outcome and command records),
in CPU time per event, interleaved in one process: tracing off (no exporter configured: the shipped
default), then on with the SDK's default parent-based sampler over a trace id ratio. "On" is the
whole SDK path: spans through a ``BatchSpanProcessor`` into an exporter that encodes each batch of
spans as OTLP protobuf, as the OTLP exporters do, and drops it instead of sending it (no collector's
latency in the measure). Rows: every event from a sampled producer (ratio 1.0); 1% of the producers'
traces sampled (the records carry ``traceparent``, flagged sampled on one in a hundred: a service and
the pipeline at ratio 0.01); and events with no producer context at all, each a root that the 0.01
ratio decides. Target: under 10% of throughput at 0.01.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Sequence
from typing import Any

import msgspec
import orjson
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ParentBasedTraceIdRatio

from bench.core import core_round, fresh_processor, source_records
from salesflow.domain.records import RecordIn
from salesflow.gc_policy import tune_for_batches
from salesflow.settings import Settings
from salesflow.tracing import setup


class EncodingExporter(SpanExporter):
    """Encodes what an OTLP exporter would send, then drops it; counts the spans."""

    def __init__(self) -> None:
        self.spans = 0
        self.bytes = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.bytes += len(encode_spans(spans).SerializeToString())
        self.spans += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def with_producer_context(records: list[RecordIn], every: int) -> list[RecordIn]:
    """``records`` with a ``traceparent`` each, one in ``every`` flagged sampled."""
    out = []
    for index, record in enumerate(records):
        flags = "01" if index % every == 0 else "00"
        traceparent = f"00-{random.getrandbits(128):032x}-{random.getrandbits(64) or 1:016x}-{flags}"
        value = orjson.dumps({**orjson.loads(record.value or b"{}"), "traceparent": traceparent})
        out.append(msgspec.structs.replace(record, value=value))
    return out


def provider(ratio: float) -> tuple[TracerProvider, EncodingExporter]:
    exporter = EncodingExporter()
    made = TracerProvider(sampler=ParentBasedTraceIdRatio(ratio), resource=Resource.create({"service.name": "bench"}))
    made.add_span_processor(BatchSpanProcessor(exporter, max_queue_size=1 << 16))
    return made, exporter


VARIANTS = (
    "off (no exporter)",
    "off, the records carrying traceparent",
    "on, ratio 1.0",
    "on, ratio 0.01 (1% of producers' traces sampled)",
    "on, ratio 0.01, no producer context (each event a root)",
)


def runs_of(events: int, batch: int, rounds: int) -> tuple[dict[str, list[float]], dict[str, Any]]:
    """Each variant's CPU µs per event, per round (interleaved), and its provider and exporter."""
    settings = Settings()
    records = source_records(events, settings)
    tune_for_batches()
    one_in_100 = with_producer_context(records, 100)
    variants: dict[str, tuple[list[RecordIn], tuple[TracerProvider, EncodingExporter] | None]] = dict(
        zip(
            VARIANTS,
            (
                (records, None),
                (one_in_100, None),
                (with_producer_context(records, 1), provider(1.0)),
                (one_in_100, provider(0.01)),
                (records, provider(0.01)),
            ),
            strict=True,
        )
    )
    runs: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, (batch_records, chosen) in variants.items():
            if chosen is None:
                setup.disable()
            else:
                setup.use(chosen[0])
            processor = fresh_processor(settings)
            started = time.process_time()  # every thread's CPU: the span processor's exporting one too
            core_round(processor, batch_records, batch)
            if chosen is not None:
                chosen[0].force_flush()
            runs[name].append((time.process_time() - started) / len(records) * 1e6)
    setup.disable()
    return runs, {name: chosen for name, (_, chosen) in variants.items()}


def measure(events: int = 20_000, batch: int = 500, rounds: int = 3) -> dict[str, float]:
    """The report's figures (``bench/report.py`` TARGETS ``tracing_cost_pct@0.01``): throughput lost
    against tracing off, in percent, at ratio 0.01 (1% of the producers' traces sampled) and 1.0."""
    runs, _ = runs_of(events, batch, rounds)
    off, carrying, every, one_in_100, _roots = (statistics.median(runs[name]) for name in VARIANTS)
    return {
        "tracing_off_us_per_event": round(off, 3),
        "tracing_off_carrying_context_us_per_event": round(carrying, 3),
        "tracing_cost_pct@0.01": round((1 - off / one_in_100) * 100, 2),
        "tracing_cost_pct@1.0": round((1 - off / every) * 100, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    runs, providers = runs_of(args.events, args.batch, args.rounds)
    _report(args, runs, providers)


def _report(args: Any, runs: dict[str, list[float]], providers: dict[str, Any]) -> None:
    off = statistics.median(runs["off (no exporter)"])
    print(f"{args.events:,} events, batches of {args.batch}, medians of {args.rounds} interleaved rounds (CPU time)")
    print("| tracing | µs/event | events/s of one core | throughput vs off | spans exported | OTLP bytes |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, values in runs.items():
        median = statistics.median(values)
        exporter = providers[name][1] if providers[name] else None
        spans = f"{exporter.spans:,}" if exporter else "-"
        sent = f"{exporter.bytes:,}" if exporter else "-"
        print(f"| {name} | {median:.1f} | {1e6 / median:,.0f} | {off / median - 1:+.1%} | {spans} | {sent} |")


if __name__ == "__main__":
    main()
