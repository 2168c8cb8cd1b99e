"""The run's report: JSON (``latest.json`` and a dated copy), Markdown and a PNG chart."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# Issue 23's targets: ratios from one run (machines differ 2x from day to day), and the latency and
# memory budgets. Each names the figures of the same run that bound it (its floor and its peer), which
# the report prints beside a target that is not met: that is the why.
TARGETS: dict[str, tuple[str, float, tuple[str, ...]]] = {
    # the default engine against a Quix Streams application doing the same work (bench/quix_peer.py)
    "processor_vs_quix_ratio": (
        ">=",
        2.0,
        ("processor_events_per_s", "quix_peer_events_per_s", "contract_floor_events_per_s"),
    ),
    "processor_vs_raw_librdkafka_ratio": (
        ">=",
        0.06,
        ("processor_events_per_s", "raw_librdkafka_consume_events_per_s", "contract_floor_events_per_s"),
    ),
    "faust_vs_bare_ratio": (">=", 0.7, ("faust_bare_events_per_s", "engines_events_per_s")),
    "projection_vs_upsert_ratio": (
        ">=",
        0.8,
        ("projection_rows_per_s", "raw_upsert_rows_per_s", "raw_copy_rows_per_s"),
    ),
    "e2e_p99_ms@5000": ("<=", 100.0, ("processor_events_per_s", "projection_rows_per_s")),
    "e2e_p99_ms@1000": ("<=", 50.0, ("processor_events_per_s", "projection_rows_per_s")),
    "worker_rss_mb": ("<=", 150.0, ()),
    "worker_peak_rss_mb": ("<=", 200.0, ()),
    # the outbox relay (bench/outbox.py): against a bare librdkafka produce of the same rows
    "relay_vs_bare_produce_ratio": (">=", 0.5, ("relay_events_per_s", "relay_bare_produce_events_per_s")),
    "relay_commit_to_kafka_p99_ms@1000": ("<=", 50.0, ("relay_commit_to_kafka_p50_ms",)),
    # the core on a v1/v2 mix of lead.created against all v2 (bench/upcast.py): what upcasting costs
    "upcast_cost_pct": ("<=", 5.0, ("upcast_all_v2_us_per_event", "upcast_mix_us_per_event")),
    # the core with tracing on at ratio 0.01 against tracing off (bench/tracing.py): throughput lost, %
    "tracing_cost_pct@0.01": (
        "<=",
        10.0,
        ("tracing_off_us_per_event", "tracing_off_carrying_context_us_per_event", "tracing_cost_pct@1.0"),
    ),
}


def target_checks(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each target with the measured value, whether it is met (None: not measured in this run) and,
    beside one not met, the figures of the same run that bound it (reported, never asserted)."""
    checks = {}
    for name, (op, bound, context) in TARGETS.items():
        key, _, rate = name.partition("@")
        value = report.get(key)
        if rate:
            value = (value or {}).get(rate)
        met = None if value is None else (value >= bound if op == ">=" else value <= bound)
        check: dict[str, Any] = {"target": f"{op} {bound:g}", "value": value, "met": met}
        if met is False:
            check["why"] = {k: report.get(k) for k in context}
        checks[name] = check
    return checks


def write(report: dict[str, Any], out: Path) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H%M%SZ")
    body = json.dumps(report, indent=2, sort_keys=False) + "\n"
    paths = {
        "json": out / "latest.json",
        "dated": out / f"{stamp}.json",
        "markdown": out / "latest.md",
        "chart": out / "latest.png",
    }
    paths["json"].write_text(body)
    paths["dated"].write_text(body)
    paths["markdown"].write_text(markdown(report))
    chart(report, paths["chart"])
    return paths


def _f(value: Any, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def markdown(report: dict[str, Any]) -> str:
    env = report["environment"]
    libs = ", ".join(f"{k} {v}" for k, v in env["libraries"].items())
    lines = [
        f"Measured {report['measured_at']} on {env['cores']} cores (load average at start "
        f"{' / '.join(map(str, env['load_average']))}); Python {env['python']}, Kafka {env['kafka']}, "
        f"PostgreSQL {env['postgres']}; {libs}.",
        f"{report['events']:,} events of {report['mean_event_bytes']:.0f} bytes on average, "
        f"{report['partitions']} partitions per topic; medians of {report['repeats']} runs.",
        "",
        "| measure | pipeline | raw limit | ratio |",
        "| --- | --- | --- | --- |",
        f"| processor ({report.get('default_engine', 'faust')} engine, the default), events/s (1 worker) "
        f"| {_f(report['processor_events_per_s'])} | "
        f"{_f(report['raw_consume_events_per_s'])} (bare aiokafka consumer) | "
        f"{_f(report['processor_vs_raw_consume_ratio'], 3)} |",
        *_engine_rows(report),
        *_peer_rows(report),
        *_floor_rows(report),
        *_relay_rows(report),
        f"| projection, rows/s | {_f(report['projection_rows_per_s'])} | "
        f"{_f(report['raw_copy_rows_per_s'])} (asyncpg COPY) | {_f(report['projection_vs_copy_ratio'], 3)} |",
        "",
        "| produce rate, events/s | achieved | events | p50 ms | p95 ms | p99 ms | max ms "
        "| worker RSS MB | projection RSS MB |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in report["e2e"]:
        lines.append(
            f"| {r['rate']:,} | {_f(r['achieved_rate'])} | {r['events']:,} | {_f(r['p50_ms'], 1)} | "
            f"{_f(r['p95_ms'], 1)} | {_f(r['p99_ms'], 1)} | {_f(r['max_ms'], 1)} | {_f(r['worker_rss_mb'])} | "
            f"{_f(r['projection_rss_mb'])} |"
        )
    lines += [
        "",
        f"Worker RSS: peak {_f(report['worker_peak_rss_mb'])} MB (processor run), steady "
        f"{_f(report['worker_rss_mb'])} MB (e2e). Projection RSS: peak {_f(report['projection_peak_rss_mb'])} MB, "
        f"steady {_f(report['projection_rss_mb'])} MB.",
        "",
        "| target | measured | met |",
        "| --- | --- | --- |",
    ]
    for name, check in report["targets"].items():
        value = check["value"]
        shown = "-" if value is None else f"{value:,.3g}" if isinstance(value, float) else str(value)
        why = "; ".join(f"{k} {v}" for k, v in check.get("why", {}).items())
        lines.append(f"| {name} {check['target']} | {shown} | {_met(check['met'])}{f' ({why})' if why else ''} |")
    return "\n".join(lines) + "\n"


def _engine_rows(report: dict[str, Any]) -> list[str]:
    engines = report.get("engines_events_per_s")
    if not engines:
        return []
    bare = report["faust_bare_events_per_s"]
    rows = [f"| bare Faust agent that only acks, events/s | {_f(bare)} | - | - |"]
    for name, eps in engines.items():
        engine, _, times = name.partition("_x")
        label = f"{engine} engine, events/s ({times or 1} worker{'s, sum' if times else ''})"
        against = f"{_f(eps / bare, 2)} x bare Faust" if bare and engine == "faust" and not times else "-"
        rows.append(f"| {label} | {_f(eps)} | - | {against} |")
    return rows


def _peer_rows(report: dict[str, Any]) -> list[str]:
    """The Quix Streams peer: the same work on the same records (absent from older runs)."""
    peer = report.get("quix_peer_events_per_s")
    if not peer:
        return []
    return [
        f"| Quix Streams peer, the worker's work (bench/quix_peer.py), events/s (1 process) | {_f(peer)} | - | "
        f"{report.get('default_engine', 'batch')} engine {_f(report['processor_vs_quix_ratio'], 2)} x the peer |"
    ]


def _relay_rows(report: dict[str, Any]) -> list[str]:
    """The outbox relay (absent from older runs)."""
    relay = report.get("relay_events_per_s")
    if not relay:
        return []
    return [
        f"| outbox relay (committed rows to broker acks), events/s | {_f(relay)} | "
        f"{_f(report['relay_bare_produce_events_per_s'])} (bare librdkafka produce) | "
        f"{_f(report['relay_vs_bare_produce_ratio'], 2)} |",
        f"| outbox commit to Kafka at 1,000 events/s, p50 / p99 ms | {report['relay_commit_to_kafka_p50_ms']} / "
        f"{report['relay_commit_to_kafka_p99_ms']['1000']} | - | - |",
    ]


def _floor_rows(report: dict[str, Any]) -> list[str]:
    """The floors: what the contracts alone cost, with no code of ours in between (absent from older runs)."""
    rows = []
    floor, raw = report.get("contract_floor_events_per_s"), report.get("raw_librdkafka_consume_events_per_s")
    if floor and raw:
        rows += [
            f"| bare librdkafka consumer (the batch engine's client), events/s | {_f(raw)} | - | - |",
            f"| contract floor: librdkafka consume + envelope validation only, events/s | {_f(floor)} | "
            f"{_f(raw)} (bare librdkafka) | {_f(floor / raw, 3)} |",
        ]
    upsert = report.get("raw_upsert_rows_per_s")
    if upsert:
        rows.append(
            f"| idempotent-write floor: COPY to staging + upsert, rows/s | {_f(upsert)} | "
            f"{_f(report['raw_copy_rows_per_s'])} (asyncpg COPY) | {_f(report['upsert_vs_copy_ratio'], 3)} |"
        )
    return rows


def _met(met: bool | None) -> str:
    return "not measured" if met is None else "yes" if met else "no"


def chart(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display: a file only
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    names = ["processor\nevents/s", "projection\nrows/s"]
    ours = [report["processor_events_per_s"], report["projection_rows_per_s"]]
    raw = [report["raw_consume_events_per_s"], report["raw_copy_rows_per_s"]]
    xs = range(len(names))
    left.bar([x - 0.2 for x in xs], raw, 0.4, label="raw limit", color="#bbbbbb")
    left.bar([x + 0.2 for x in xs], ours, 0.4, label="pipeline", color="#3b7dd8")
    for x, (o, r) in enumerate(zip(ours, raw, strict=True)):
        left.text(x + 0.2, o, f"{o / r:.2f}x", ha="center", va="bottom", fontsize=9)
    left.set_xticks(list(xs), names)
    left.set_yscale("log")
    left.set_title(f"Throughput ({report['events']:,} events, median of {report['repeats']})")
    left.legend()
    for key, style in (("p50_ms", "o-"), ("p95_ms", "s-"), ("p99_ms", "^-")):
        right.plot([r["rate"] for r in report["e2e"]], [r[key] for r in report["e2e"]], style, label=key[:3])
    right.axhline(100, color="red", linestyle="--", linewidth=1, label="p99 target")
    right.set_yscale("log")  # a backlog's seconds and a healthy run's milliseconds on one chart
    right.set_xlabel("produce rate, events/s")
    right.set_ylabel("produce -> final status row, ms")
    right.set_title("End-to-end latency")
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
