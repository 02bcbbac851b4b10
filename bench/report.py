"""The printed tables and the saved JSON of a benchmark run.

Ratios compare an aspect-ipc figure with the same figure of each baseline: for throughput and
requests per second it is aspect-ipc / baseline (``0.42x raw`` = 42 % of the raw socket's rate,
higher is better); for latency it is aspect-ipc / baseline too, so there ``3.0x raw`` means three
times the raw socket's round trip (lower is better). The seed payloads' tables are in
report_seed.py, the issue-8 targets in targets.py.
"""

from __future__ import annotations

import statistics
from typing import Any

from measure import IN_FLIGHT, MANY_IN_FLIGHT, SMALL_SIZE, Throughput, size_label
from ratios import ratios, versus
from report_seed import seed_json, seed_tables
from results import RunResults
from targets import Verdict, summary_lines, verdicts_json

__all__ = ["format_report", "json_report"]


def format_report(run: RunResults, verdicts: list[Verdict]) -> str:
    """All tables, then the summary of the targets, as text."""
    lines: list[str] = []
    _throughput_table(lines, run)
    _latency_table(lines, run)
    _small_rps_table(lines, run)
    seed_tables(lines, run)
    _spawn_table(lines, run)
    lines.extend(summary_lines(verdicts))
    return "\n".join(lines)


def json_report(meta: dict[str, Any], run: RunResults, verdicts: list[Verdict]) -> dict[str, Any]:
    """Everything measured, with each aspect-ipc figure's ratios to the baselines."""
    baselines = run.baselines
    worker_entries: dict[str, Any] = {}
    for name, result in run.workers.items():
        entry = result.as_dict()
        for cell, row in zip(result.throughput.values(), entry["throughput"], strict=True):
            row["ratios"] = ratios(
                baselines, lambda b, c=cell: _rate(c) / _rate(b.throughput[c.size, c.in_flight])
            )
        for channel, latency in result.latency.items():
            row = entry["latency"][channel]
            for quantile in ("p50", "p99"):
                row[f"{quantile}_ratios"] = ratios(
                    baselines,
                    lambda b, q=quantile, lat=latency: getattr(lat, q) / getattr(b.latency, q),
                )
        if result.small_rps is not None:
            entry["small_rps"]["ratios"] = ratios(
                baselines, lambda b, s=result.small_rps: s.ops_per_s / _rate(b.small_rps)
            )
        if result.spawn_seconds:
            entry["spawn_to_ready_s"]["ratios"] = ratios(
                baselines, lambda b, w=result: w.spawn_median / _median(b.spawn_seconds)
            )
        worker_entries[name] = entry
    document = {
        "meta": meta,
        "baselines": {key: result.as_dict() for key, result in baselines.items()},
        "workers": worker_entries,
        "seed": seed_json(run),
        "targets": verdicts_json(verdicts),
        "skipped": dict(run.skipped),
    }
    return document


# -- tables -------------------------------------------------------------------------------------


def _throughput_table(lines: list[str], run: RunResults) -> None:
    baselines = run.baselines
    lines.append(
        f"Echo of bytes, 1 and {IN_FLIGHT} in flight (aspect-ipc: data channel, Python parent)"
    )
    lines.append(
        "MB/s = 10^6 payload bytes/s, both directions; "
        "ratio = aspect-ipc / baseline, higher is faster"
    )
    lines.append(_row("", "size", "in flight", "MB/s", "echoes/s", "vs baselines"))
    for size in run.sizes:
        for in_flight in (1, IN_FLIGHT):
            lines.append("")
            for result in baselines.values():
                cell = result.throughput.get((size, in_flight))
                if cell is not None:
                    lines.append(_throughput_row(result.name, cell, ""))
            for name, worker in run.workers.items():
                cell = worker.throughput.get((size, in_flight))
                if cell is not None:
                    text = versus(
                        baselines,
                        lambda b, c=cell: _rate(c) / _rate(b.throughput.get((c.size, c.in_flight))),
                    )
                    lines.append(_throughput_row(f"{name} worker", cell, text))
    lines.append("")


def _latency_table(lines: list[str], run: RunResults) -> None:
    baselines = run.baselines
    lines.append(
        f"Round trip of one small request, one in flight (baselines: a {SMALL_SIZE} B echo)"
    )
    lines.append("ratio = aspect-ipc / baseline, lower is faster")
    lines.append(f"{'':<18}{'p50 µs':>11}{'p99 µs':>11}   {'p50 vs baselines':<27}p99 vs baselines")
    for result in baselines.values():
        if result.latency is not None:
            lat = result.latency
            lines.append(f"{result.name:<18}{lat.p50 * 1e6:>11,.1f}{lat.p99 * 1e6:>11,.1f}")
    for name, worker in run.workers.items():
        for channel, lat in worker.latency.items():
            p50 = versus(baselines, lambda b, v=lat: v.p50 / b.latency.p50)
            p99 = versus(baselines, lambda b, v=lat: v.p99 / b.latency.p99)
            label = f"{name} {channel}"
            lines.append(
                f"{label:<18}{lat.p50 * 1e6:>11,.1f}{lat.p99 * 1e6:>11,.1f}   {p50:<27}{p99}"
            )
    lines.append("")


def _small_rps_table(lines: list[str], run: RunResults) -> None:
    baselines = run.baselines
    lines.append(
        f"Small requests per second, {MANY_IN_FLIGHT} in flight (aspect-ipc: data channel; "
        f"baselines: {SMALL_SIZE} B echoes)"
    )
    lines.append("ratio = aspect-ipc / baseline, higher is faster")
    lines.append(f"{'':<22}{'requests/s':>12}   vs baselines")
    for result in baselines.values():
        if result.small_rps is not None:
            lines.append(f"{result.name:<22}{result.small_rps.ops_per_s:>12,.0f}")
    for name, worker in run.workers.items():
        if worker.small_rps is not None:
            rps = worker.small_rps
            text = versus(baselines, lambda b, s=rps: s.ops_per_s / _rate(b.small_rps))
            lines.append(f"{name + ' data':<22}{rps.ops_per_s:>12,.0f}   {text}")
    lines.append("")


def _spawn_table(lines: list[str], run: RunResults) -> None:
    baselines = run.baselines
    lines.append(
        f"Spawn to ready, median of {run.spawns}: manager.spawn() with the data channel, until it "
        "returns"
    )
    lines.append(
        "baselines: Process.start() of their server (spawn method) until a first "
        f"{SMALL_SIZE} B echo came back"
    )
    lines.append("ratio = aspect-ipc / baseline, lower is faster")
    lines.append(f"{'':<22}{'ms':>9}   {'vs baselines':<27}samples (ms)")
    rows = [(result.name, result.spawn_seconds, "") for result in baselines.values()]
    for name, worker in run.workers.items():
        text = versus(baselines, lambda b, w=worker: w.spawn_median / _median(b.spawn_seconds))
        rows.append((f"{name} worker", worker.spawn_seconds, text))
    for label, seconds, text in rows:
        if seconds:
            samples = ", ".join(f"{s * 1e3:.0f}" for s in seconds)
            lines.append(f"{label:<22}{_median(seconds) * 1e3:>9,.0f}   {text:<27}{samples}")
    lines.append("")


# -- helpers ------------------------------------------------------------------------------------


def _row(*cells: str) -> str:
    name, size, in_flight, mb, ops, text = cells
    return f"{name:<16}{size:>8}{in_flight:>11}{mb:>11}{ops:>12}   {text}".rstrip()


def _throughput_row(name: str, cell: Throughput, text: str) -> str:
    return _row(
        name,
        size_label(cell.size),
        str(cell.in_flight),
        f"{cell.mb_per_s:,.1f}" if cell.mb_per_s >= 1 else f"{cell.mb_per_s:.3f}",
        f"{cell.ops_per_s:,.0f}",
        text,
    )


def _median(samples: list[float]) -> float:
    return statistics.median(samples) if samples else float("nan")


def _rate(cell: Throughput | None) -> float:
    if cell is None:
        return float("nan")
    return cell.ops_per_s
