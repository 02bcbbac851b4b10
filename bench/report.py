"""The printed tables and the saved JSON of a benchmark run.

Ratios compare an aspect-ipc figure with the same figure of each baseline: for throughput and
requests per second it is aspect-ipc / baseline (``0.42x raw`` = 42 % of the raw socket's rate,
higher is better); for latency it is aspect-ipc / baseline too, so there ``3.0x raw`` means three
times the raw socket's round trip (lower is better).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from baselines import BaselineResult
from measure import IN_FLIGHT, MANY_IN_FLIGHT, SMALL_SIZE, Throughput, size_label
from worker_cells import WorkerResult

__all__ = ["format_report", "json_report"]

_SHORT = {"raw_socket": "raw", "mp_pipe": "mp.Pipe"}


def format_report(
    baselines: Mapping[str, BaselineResult],
    workers: Mapping[str, WorkerResult],
    sizes: Iterable[int],
    spawns: int,
) -> str:
    """All tables, as text."""
    lines: list[str] = []
    _throughput_table(lines, baselines, workers, sizes)
    _latency_table(lines, baselines, workers)
    _small_rps_table(lines, baselines, workers)
    _spawn_table(lines, workers, spawns)
    return "\n".join(lines)


def json_report(
    meta: dict[str, Any],
    baselines: Mapping[str, BaselineResult],
    workers: Mapping[str, WorkerResult],
    skipped: Mapping[str, str],
) -> dict[str, Any]:
    """Everything measured, with each aspect-ipc figure's ratios to the baselines."""
    worker_entries: dict[str, Any] = {}
    for name, result in workers.items():
        entry = result.as_dict()
        for cell, row in zip(result.throughput.values(), entry["throughput"], strict=True):
            row["ratios"] = _ratios(
                baselines, lambda b, c=cell: _rate(c) / _rate(b.throughput[c.size, c.in_flight])
            )
        for channel, latency in result.latency.items():
            row = entry["latency"][channel]
            for quantile in ("p50", "p99"):
                row[f"{quantile}_ratios"] = _ratios(
                    baselines,
                    lambda b, q=quantile, lat=latency: getattr(lat, q) / getattr(b.latency, q),
                )
        if result.small_rps is not None:
            entry["small_rps"]["ratios"] = _ratios(
                baselines, lambda b, s=result.small_rps: s.ops_per_s / _rate(b.small_rps)
            )
        worker_entries[name] = entry
    return {
        "meta": meta,
        "baselines": {key: result.as_dict() for key, result in baselines.items()},
        "workers": worker_entries,
        "skipped": dict(skipped),
    }


# -- tables -------------------------------------------------------------------------------------


def _throughput_table(
    lines: list[str],
    baselines: Mapping[str, BaselineResult],
    workers: Mapping[str, WorkerResult],
    sizes: Iterable[int],
) -> None:
    lines.append(
        f"Echo of bytes, 1 and {IN_FLIGHT} in flight (aspect-ipc: data channel, Python parent)"
    )
    lines.append(
        "MB/s = 10^6 payload bytes/s, both directions; "
        "ratio = aspect-ipc / baseline, higher is faster"
    )
    lines.append(_row("", "size", "in flight", "MB/s", "echoes/s", "vs baselines"))
    for size in sizes:
        for in_flight in (1, IN_FLIGHT):
            lines.append("")
            for result in baselines.values():
                cell = result.throughput.get((size, in_flight))
                if cell is not None:
                    lines.append(_throughput_row(result.name, cell, ""))
            for name, worker in workers.items():
                cell = worker.throughput.get((size, in_flight))
                if cell is not None:
                    versus = _versus(
                        baselines,
                        lambda b, c=cell: _rate(c) / _rate(b.throughput.get((c.size, c.in_flight))),
                    )
                    lines.append(_throughput_row(f"{name} worker", cell, versus))
    lines.append("")


def _latency_table(
    lines: list[str], baselines: Mapping[str, BaselineResult], workers: Mapping[str, WorkerResult]
) -> None:
    lines.append(
        f"Round trip of one small request, one in flight (baselines: a {SMALL_SIZE} B echo)"
    )
    lines.append("ratio = aspect-ipc / baseline, lower is faster")
    lines.append(f"{'':<18}{'p50 µs':>9}{'p99 µs':>9}   {'p50 vs baselines':<27}p99 vs baselines")
    for result in baselines.values():
        if result.latency is not None:
            lat = result.latency
            lines.append(f"{result.name:<18}{lat.p50 * 1e6:>9.1f}{lat.p99 * 1e6:>9.1f}")
    for name, worker in workers.items():
        for channel, lat in worker.latency.items():
            p50 = _versus(baselines, lambda b, v=lat: v.p50 / b.latency.p50)
            p99 = _versus(baselines, lambda b, v=lat: v.p99 / b.latency.p99)
            label = f"{name} {channel}"
            lines.append(f"{label:<18}{lat.p50 * 1e6:>9.1f}{lat.p99 * 1e6:>9.1f}   {p50:<27}{p99}")
    lines.append("")


def _small_rps_table(
    lines: list[str], baselines: Mapping[str, BaselineResult], workers: Mapping[str, WorkerResult]
) -> None:
    lines.append(
        f"Small requests per second, {MANY_IN_FLIGHT} in flight (aspect-ipc: data channel; "
        f"baselines: {SMALL_SIZE} B echoes)"
    )
    lines.append("ratio = aspect-ipc / baseline, higher is faster")
    lines.append(f"{'':<22}{'requests/s':>12}   vs baselines")
    for result in baselines.values():
        if result.small_rps is not None:
            lines.append(f"{result.name:<22}{result.small_rps.ops_per_s:>12,.0f}")
    for name, worker in workers.items():
        if worker.small_rps is not None:
            rps = worker.small_rps
            versus = _versus(baselines, lambda b, s=rps: s.ops_per_s / _rate(b.small_rps))
            lines.append(f"{name + ' data':<22}{rps.ops_per_s:>12,.0f}   {versus}")
    lines.append("")


def _spawn_table(lines: list[str], workers: Mapping[str, WorkerResult], spawns: int) -> None:
    lines.append(
        f"Spawn to ready: manager.spawn() with the data channel, until it returns; median of "
        f"{spawns} (no baseline)"
    )
    for name, worker in workers.items():
        if worker.spawn_seconds:
            samples = ", ".join(f"{s * 1e3:.0f}" for s in worker.spawn_seconds)
            lines.append(
                f"{name + ' worker':<22}{worker.spawn_median * 1e3:>9.0f} ms   ({samples})"
            )
    lines.append("")


# -- helpers ------------------------------------------------------------------------------------


def _row(*cells: str) -> str:
    name, size, in_flight, mb, ops, versus = cells
    return f"{name:<16}{size:>8}{in_flight:>11}{mb:>11}{ops:>12}   {versus}".rstrip()


def _throughput_row(name: str, cell: Throughput, versus: str) -> str:
    return _row(
        name,
        size_label(cell.size),
        str(cell.in_flight),
        f"{cell.mb_per_s:,.1f}" if cell.mb_per_s >= 1 else f"{cell.mb_per_s:.3f}",
        f"{cell.ops_per_s:,.0f}",
        versus,
    )


def _rate(cell: Throughput | None) -> float:
    if cell is None:
        return float("nan")
    return cell.ops_per_s


def _ratios(baselines: Mapping[str, BaselineResult], ratio: Any) -> dict[str, float | None]:
    values: dict[str, float | None] = {}
    for key, baseline in baselines.items():
        try:
            value = float(ratio(baseline))
        except (AttributeError, ZeroDivisionError, KeyError):
            value = float("nan")
        values[f"vs_{key}"] = None if value != value else round(value, 4)
    return values


def _versus(baselines: Mapping[str, BaselineResult], ratio: Any) -> str:
    parts = []
    for key, value in _ratios(baselines, ratio).items():
        short = _SHORT.get(key.removeprefix("vs_"), key)
        parts.append(f"{_format_ratio(value)} {short}")
    return ", ".join(parts)


def _format_ratio(value: float | None) -> str:
    if value is None:
        return "n/a"
    if value < 10:
        return f"{value:.2f}x"
    if value < 100:
        return f"{value:.1f}x"
    return f"{value:.0f}x"
