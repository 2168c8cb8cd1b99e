"""``python -m bench``: every measure of ``bench/README.md`` in one run, against the local stack.

Order: load the source topics once; raw consume (aiokafka, librdkafka, and librdkafka with the
envelope contract's validation: the contract floor), then the bare Faust agent, each worker engine
alone and as two processes, and the Quix Streams peer doing the worker's work (``bench.quix_peer``),
interleaved (repeats each); copy the sources and one run's outcomes to the projection's topics; raw
COPY and the idempotent-write floor (COPY to staging + upsert), then the projection (repeats each);
end-to-end latency at each produce rate with both services running; the outbox relay; what
upcasting and tracing cost the core. Reports in ``--out``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from statistics import median
from typing import Any

from bench import kafka_io, latency, outbox, quix_peer, report, throughput, tracing, upcast
from bench.stack import BenchStack, environment
from salesflow.gc_policy import tune_for_batches
from salesflow.settings import Settings

RESULTS = Path(__file__).resolve().parent / "results"
# Worker variants measured side by side: (engine, worker processes). Two processes: their sum.
ENGINE_VARIANTS = {"faust": ("faust", 1), "batch": ("batch", 1), "faust_x2": ("faust", 2), "batch_x2": ("batch", 2)}
DEFAULT_ENGINE = str(Settings.model_fields["worker_engine"].default)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--events", type=int, default=200_000, help="events for the throughput measures")
    parser.add_argument("--rates", default="1000,5000,10000", help="produce rates for e2e latency, events/s")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of producing at each rate")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each throughput measure (median)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the reports go")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, a few seconds each (CI)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.events, args.rates, args.duration, args.repeats = 2_000, "200", 3.0, 1
    args.rates = [int(r) for r in str(args.rates).split(",") if r]
    return args


def log(message: str) -> None:
    print(f"[bench {datetime.now().strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass
class Measured:
    """Every figure of one run, each a list over the repeats, as the steps of ``bench`` take them."""

    env: dict[str, Any]
    source: Settings
    loaded: kafka_io.Loaded
    raw_consume: list[float] = field(default_factory=list)
    raw_librdkafka: list[float] = field(default_factory=list)
    contract_floor: list[float] = field(default_factory=list)
    runs: dict[str, list[throughput.ProcessorRun]] = field(default_factory=lambda: {n: [] for n in ENGINE_VARIANTS})
    faust_bare: list[float] = field(default_factory=list)
    quix: list[throughput.ProcessorRun] = field(default_factory=list)  # the peer (bench/quix_peer.py)
    events: int = 0  # the projection's input
    facts: int = 0
    raw_copy: list[float] = field(default_factory=list)
    raw_upsert: list[float] = field(default_factory=list)
    projection: list[throughput.ProjectionRun] = field(default_factory=list)
    e2e: list[latency.RateResult] = field(default_factory=list)

    @property
    def processor(self) -> list[throughput.ProcessorRun]:
        return self.runs[DEFAULT_ENGINE]


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    stack = BenchStack.open()
    logs = Path(tempfile.mkdtemp(prefix="salesflow-bench-"))
    timeout = max(120.0, args.events / 200)
    try:
        measured = await load_sources(stack, args, logs)
        await consume_floors(measured, args, timeout)
        await worker_runs(measured, args, logs, timeout)
        tables, target = await projection_input(stack, measured)
        await write_floors(stack, measured, tables, args.repeats)
        del tables
        await projection_runs(stack, measured, target, args.repeats, logs, timeout)
        measured.e2e = await latency.e2e_run(stack, args.rates, args.duration, logs)
        for r in measured.e2e:
            log(f"e2e at {r.rate}/s: p50 {r.p50_ms:.1f} p95 {r.p95_ms:.1f} p99 {r.p99_ms:.1f} max {r.max_ms:.1f} ms")
    finally:
        await stack.drop_database()
    relay = await outbox_relay(args)
    result = summary(args, measured, relay)
    # What upcasting and tracing cost the core: no Kafka, on a thread (the core runs its own event loop).
    for measure in (upcast.measure, tracing.measure):
        result.update(await asyncio.to_thread(measure, min(args.events, 20_000)))
    result["targets"] = report.target_checks(result)
    return result


async def load_sources(stack: BenchStack, args: argparse.Namespace, logs: Path) -> Measured:
    """A database of this run's own, and ``--events`` demo events on the source topics."""
    await stack.create_database()
    env = await environment(stack)
    log(
        f"{env['cores']} cores, load {env['load_average']}, Python {env['python']}, Kafka {env['kafka']}, "
        f"Postgres {env['postgres']}; service logs in {logs}"
    )
    source = await stack.settings("src")
    loaded = await kafka_io.preload(source, args.events)
    log(f"loaded {loaded.events:,} events ({loaded.mean_bytes:.0f} bytes on average)")
    return Measured(env=env, source=source, loaded=loaded)


async def consume_floors(m: Measured, args: argparse.Namespace, timeout: float) -> None:
    """Raw consume (aiokafka, librdkafka) and the contract floor (librdkafka + envelope validation)."""
    for _ in range(args.repeats):
        m.raw_consume.append(await kafka_io.raw_consume(m.source, args.events))
        log(f"raw consume: {m.raw_consume[-1]:,.0f} events/s")
        m.raw_librdkafka.append(
            await asyncio.to_thread(kafka_io.librdkafka_consume, m.source, args.events, validate=False, timeout=timeout)
        )
        log(f"raw consume, librdkafka: {m.raw_librdkafka[-1]:,.0f} events/s")
        m.contract_floor.append(
            await asyncio.to_thread(kafka_io.librdkafka_consume, m.source, args.events, validate=True, timeout=timeout)
        )
        log(f"contract floor (librdkafka consume + envelope validation): {m.contract_floor[-1]:,.0f} events/s")


async def worker_runs(m: Measured, args: argparse.Namespace, logs: Path, timeout: float) -> None:
    """Both engines, alone and two processes each, the bare Faust agent and the Quix Streams peer:
    interleaved, so a busy machine weighs on every variant alike."""
    for _ in range(args.repeats):
        try:
            m.faust_bare.append(await throughput.faust_bare_run(m.source, args.events, logs, timeout))
            log(f"bare Faust agent (acks only): {m.faust_bare[-1]:,.0f} events/s")
        except (TimeoutError, RuntimeError) as exc:  # reported as not measured, the rest goes on
            log(f"bare Faust agent: no figure ({exc!r}); logs in {logs}")
        for name, (engine, workers) in ENGINE_VARIANTS.items():
            run = await throughput.processor_run(m.source, args.events, logs, timeout, engine=engine, workers=workers)
            m.runs[name].append(run)
            log(f"processor {name}: {run.events_per_s:,.0f} events/s, peak RSS {run.peak_rss_mb:.0f} MB")
        m.quix.append(await quix_peer.peer_run(m.source, args.events, logs, timeout))
        log(f"Quix Streams peer: {m.quix[-1].events_per_s:,.0f} events/s, peak RSS {m.quix[-1].peak_rss_mb:.0f} MB")


async def projection_input(stack: BenchStack, m: Measured) -> tuple[dict[str, list[dict[str, Any]]], Settings]:
    """The sources and one run's outcomes, copied to the projection's topics; their final rows by table."""
    source, target = m.source, await stack.settings("proj")
    source_ends = await kafka_io.end_offsets(source, source.topics.sources)
    records = await kafka_io.read_range(source, {}, source_ends)
    records += await kafka_io.read_range(source, m.processor[0].outcomes_start, m.processor[0].outcomes_stop)
    topic_of = {
        **dict(zip(source.topics.sources, target.topics.sources, strict=True)),
        source.topics.outcomes: target.topics.outcomes,
    }
    await kafka_io.copy_records(target, records, topic_of)
    tables, m.events = throughput.projection_rows(records, source)
    m.facts = sum(len(rows) for name, rows in tables.items() if name != "events")
    log(f"projection input: {m.events:,} events, {m.facts:,} facts")
    return tables, target


async def write_floors(stack: BenchStack, m: Measured, tables: dict[str, list[dict[str, Any]]], repeats: int) -> None:
    """Raw COPY of the projection's rows, and the idempotent-write floor (COPY to staging + upsert)."""
    for _ in range(repeats):
        m.raw_copy.append(await throughput.raw_copy(stack, tables))
        log(f"raw COPY: {m.raw_copy[-1]:,.0f} rows/s")
        m.raw_upsert.append(await throughput.raw_upsert(stack, tables))
        log(f"idempotent-write floor (COPY to staging + upsert): {m.raw_upsert[-1]:,.0f} rows/s")


async def projection_runs(
    stack: BenchStack, m: Measured, target: Settings, repeats: int, logs: Path, timeout: float
) -> None:
    for _ in range(repeats):
        m.projection.append(await throughput.projection_run(stack, target, m.events, m.facts, logs, timeout))
        run = m.projection[-1]
        log(f"projection: {run.rows_per_s:,.0f} rows/s, peak RSS {run.peak_rss_mb:.0f} MB")


def summary(args: argparse.Namespace, m: Measured, relay: dict[str, Any]) -> dict[str, Any]:
    """The report (``bench/README.md`` names each figure): medians of the repeats, and every run."""
    return {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "smoke": args.smoke,
        "environment": m.env,
        "events": args.events,
        "mean_event_bytes": round(m.loaded.mean_bytes, 1),
        "partitions": m.source.topic_partitions,
        "repeats": args.repeats,
        **worker_summary(m),
        **projection_summary(m),
        **relay,
        "e2e_p99_ms": {str(r.rate): round(r.p99_ms, 1) for r in m.e2e},
        "e2e": [asdict(r) for r in m.e2e],
        # steady at 5,000 events/s (the budget), or at the highest rate below it in a short run
        "worker_rss_mb": round(steady_rss(m.e2e, 5_000), 1),
        "worker_peak_rss_mb": round(max(p.peak_rss_mb for p in m.processor), 1),
        "projection_rss_mb": round(max(r.projection_rss_mb for r in m.e2e), 1),
        "projection_peak_rss_mb": round(max(p.peak_rss_mb for p in m.projection), 1),
        "runs": every_run(m),
    }


def worker_summary(m: Measured) -> dict[str, Any]:
    """The worker's figures beside the consume floors, the bare agent and the peer."""
    processor_eps = median([p.events_per_s for p in m.processor])
    quix_eps = median([q.events_per_s for q in m.quix])
    return {
        "raw_consume_events_per_s": round(median(m.raw_consume)),
        "default_engine": DEFAULT_ENGINE,
        "processor_events_per_s": round(processor_eps),
        "engines_events_per_s": {name: round(median([r.events_per_s for r in rs])) for name, rs in m.runs.items()},
        "engines_peak_rss_mb": {name: round(max(r.peak_rss_mb for r in rs), 1) for name, rs in m.runs.items()},
        "batch_events_per_s": round(median([r.events_per_s for r in m.runs["batch"]])),
        "faust_bare_events_per_s": round(median(m.faust_bare)) if m.faust_bare else None,
        "faust_vs_bare_ratio": (
            round(median([r.events_per_s for r in m.runs["faust"]]) / median(m.faust_bare), 3) if m.faust_bare else None
        ),
        "processor_vs_raw_consume_ratio": round(processor_eps / median(m.raw_consume), 4),
        "quix_peer_events_per_s": round(quix_eps),
        "quix_peer_peak_rss_mb": round(max(q.peak_rss_mb for q in m.quix), 1),
        "processor_vs_quix_ratio": round(processor_eps / quix_eps, 3),
        "raw_librdkafka_consume_events_per_s": round(median(m.raw_librdkafka)),
        "processor_vs_raw_librdkafka_ratio": round(processor_eps / median(m.raw_librdkafka), 4),
        "contract_floor_events_per_s": round(median(m.contract_floor)),
    }


def projection_summary(m: Measured) -> dict[str, Any]:
    """The projection's figures beside raw COPY and the idempotent-write floor."""
    projection_rps = median([p.rows_per_s for p in m.projection])
    raw_copy, raw_upsert = median(m.raw_copy), median(m.raw_upsert)
    return {
        "raw_copy_rows_per_s": round(raw_copy),
        "projection_rows_per_s": round(projection_rps),
        "projection_vs_copy_ratio": round(projection_rps / raw_copy, 4),
        "raw_upsert_rows_per_s": round(raw_upsert),
        "upsert_vs_copy_ratio": round(raw_upsert / raw_copy, 4),
        "projection_vs_upsert_ratio": round(projection_rps / raw_upsert, 4),
        "projection_rows": {"events": m.events, "facts": m.facts},
    }


def every_run(m: Measured) -> dict[str, list[int]]:
    return {
        "raw_consume_events_per_s": [round(x) for x in m.raw_consume],
        "processor_events_per_s": [round(p.events_per_s) for p in m.processor],
        "faust_bare_events_per_s": [round(x) for x in m.faust_bare],
        **{f"{name}_events_per_s": [round(r.events_per_s) for r in rs] for name, rs in m.runs.items()},
        "quix_peer_events_per_s": [round(q.events_per_s) for q in m.quix],
        "raw_librdkafka_consume_events_per_s": [round(x) for x in m.raw_librdkafka],
        "contract_floor_events_per_s": [round(x) for x in m.contract_floor],
        "raw_copy_rows_per_s": [round(x) for x in m.raw_copy],
        "raw_upsert_rows_per_s": [round(x) for x in m.raw_upsert],
        "projection_rows_per_s": [round(p.rows_per_s) for p in m.projection],
    }


async def outbox_relay(args: argparse.Namespace) -> dict[str, Any]:
    """The outbox relay (``bench.outbox``, a database and topics of its own): its throughput beside a
    bare librdkafka produce of the same rows (medians of the rounds), and commit-to-Kafka latency at
    1,000 events/s with writers that reach that rate."""
    argv = ["--events", str(min(args.events, 100_000)), "--rounds", str(args.repeats)]
    measured = await outbox.main(outbox.parse([*argv, "--rate", "1000", "--duration", str(args.duration)]))
    relay_eps, bare = measured[f"{outbox.AFTER}_relay_events_per_s"], measured["raw_produce_events_per_s"]
    [latency_at] = measured["latency"][outbox.AFTER]
    log(f"outbox relay: {relay_eps:,.0f} events/s (bare produce {bare:,.0f}); commit to Kafka at 1,000/s: {latency_at}")
    return {
        "relay_events_per_s": round(relay_eps),
        "relay_bare_produce_events_per_s": round(bare),
        "relay_vs_bare_produce_ratio": round(relay_eps / bare, 3),
        "relay_commit_to_kafka_p50_ms": latency_at["p50_ms"],
        "relay_commit_to_kafka_p99_ms": {"1000": latency_at["p99_ms"]},
        "relay_commit_to_kafka_rate_achieved": latency_at["rate_achieved"],
    }


def steady_rss(e2e: list[latency.RateResult], rate: int) -> float:
    """The worker's steady RSS at ``rate``, or at the highest measured rate under it."""
    under = [r for r in e2e if r.rate <= rate] or e2e
    return max(under, key=lambda r: r.rate).worker_rss_mb


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    tune_for_batches()  # the services' collector, so the raw limits measured here are not held back by it
    result = asyncio.run(bench(args))
    paths = report.write(result, args.out)
    print(report.markdown(result))
    log("reports: " + ", ".join(str(p) for p in paths.values()))
    return 0
