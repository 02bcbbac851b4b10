"""The printed tables, the saved JSON and the Markdown summary of a benchmark run.

Every cell is one table: each contender's figure (the median over the rounds) and, for each
aspect-ipc row, its ratio to each baseline (aspect-ipc / baseline, the median of the rounds'
ratios and their spread). The seed payloads' wire table is in report_seed.py, the targets in
targets.py.
"""

from __future__ import annotations

from typing import Any

from cells import HIGHER, MEMORY_SIZE, cell_label
from ratios import format_stat
from report_seed import wire_json, wire_table
from results import CellResult, RunResults
from stream_cells import STREAM_CASES
from targets import Verdict, floor_lines, format_value, summary_lines, verdicts_json

__all__ = ["format_report", "json_report", "markdown_summary"]

_HEADINGS = {
    "echo": "Echo of bytes (aspect-ipc: data channel; MB/s = 10^6 payload bytes/s, both ways)",
    "latency": "Small round trip, one in flight (aspect-ipc: echo of {'n': 1}; others: 64 B echo)",
    "rps": "Small requests per second, many in flight (aspect-ipc: data channel)",
    "seed": "Seed payloads, round trip, one in flight (aspect-ipc: MessagePack on data, JSON on "
    "control; raw socket: packed, no work; mp.Pipe: pickle, computed in Python)",
    "spawn": "Spawn to ready: worker or server started until ready (baselines: a first echo)",
    "stream": "Streams (data channel, window 16) beside one request per item (echo), same worker "
    "and turn; ratio = stream / request in MB/s (1 MiB) or items/s (64 B), median of the rounds",
}
_NAME = 30


def format_report(run: RunResults, verdicts: list[Verdict]) -> str:
    """Every cell's table, the wire table, the memory loops, then the targets, as text."""
    lines: list[str] = []
    kind = ""
    for cell in run.cells:
        if cell.cell["kind"] != kind:
            kind = cell.cell["kind"]
            better = "higher" if HIGHER[kind] else "lower"
            lines.append(_HEADINGS[kind])
            compared = "stream / request" if kind == "stream" else "aspect-ipc / baseline"
            lines.append(
                f"median of {run.rounds} rounds; ratio = {compared}, median of the "
                f"rounds' ratios [lowest-highest], {better} is better"
            )
            lines.append("")
        _cell_table(lines, run, cell)
    wire_table(lines, run)
    _memory_table(lines, run)
    lines.extend(summary_lines(verdicts, run.fresh))
    lines.extend(floor_lines(run))
    return "\n".join(lines)


def json_report(meta: dict[str, Any], run: RunResults, verdicts: list[Verdict]) -> dict[str, Any]:
    """Everything measured: every round's figures, the medians, the ratios, the verdicts."""
    return {
        "meta": meta,
        "contenders": {c.key: c.as_json() for c in run.contenders},
        "cells": [cell.as_json(run.contenders) for cell in run.cells],
        "memory": run.memory,
        "seed_wire": wire_json(run),
        "targets": verdicts_json(verdicts),
        "skipped": run.skipped,
    }


def markdown_summary(run: RunResults, verdicts: list[Verdict], heading: str) -> str:
    """A Markdown table of every cell's headline figure by contender, then the targets."""
    shown = run.contenders
    lines = [heading, ""]
    lines.append("| cell | " + " | ".join(c.name for c in shown) + " |")
    lines.append("|---|" + "---:|" * len(shown))
    for cell in run.cells:
        values = [_headline_text(cell, c.key) for c in shown]
        lines.append(f"| {cell_label(cell.cell)} | " + " | ".join(values) + " |")
    lines += ["", "| target (Go worker) | measured | where | verdict |", "|---|---:|---|---|"]
    for verdict in verdicts:
        met = {True: "met", False: "**not met**", None: "-"}[verdict.met]
        lines.append(
            f"| {verdict.target.text} | {format_value(verdict)} | {verdict.where} | {met} |"
        )
    floor = floor_lines(run)
    return "\n".join(lines + (["", *floor[:1]] if floor else [])) + "\n"


def _cell_table(lines: list[str], run: RunResults, cell: CellResult) -> None:
    kind = cell.cell["kind"]
    columns = _columns(kind)
    bases = [c for c in run.baselines if c.key in cell.rounds]
    load = f"load average {cell.load_before[0]:.2f} -> {cell.load_after[0]:.2f}"
    lines.append(f"{cell_label(cell.cell)} ({load})")
    titles = f"{'':<{_NAME}}" + "".join(f"{title:>12}" for title, _, _ in columns)
    lines.append((titles + "   " + "".join(f"{'vs ' + b.short:<21}" for b in bases)).rstrip())
    for contender in run.contenders:
        if contender.key not in cell.rounds:
            continue
        rows = [("", "")]
        if kind in ("latency", "seed") and contender.is_aspect:
            rows.append(("control_", ", control"))  # the same request on the control channel
            if cell.figure(contender.key, "floor_p50") is not None:
                rows.append(("floor_", ", asyncio floor"))  # a bare client (aspect_cells.py)
        for prefix, suffix in rows:
            figures = "".join(
                _number(cell.figure(contender.key, prefix + name), scale, digits)
                for _, (name, scale), digits in columns
            )
            text = ""
            if contender.is_aspect:
                name = f"{prefix}p50" if prefix else None
                text = "".join(
                    f"{format_stat(cell.ratio(contender.key, b.key, name)):<21}" for b in bases
                )
            label = contender.name + suffix
            lines.append(f"{label:<{_NAME}}{figures}   {text}".rstrip())
    lines.append("")


def _columns(kind: str) -> list[tuple[str, tuple[str, float], int]]:
    """(title, (figure, scale), decimals) of each number column of a cell kind."""
    if kind == "echo":
        return [("MB/s", ("mb_per_s", 1), 1), ("echoes/s", ("ops_per_s", 1), 0)]
    if kind == "rps":
        return [("requests/s", ("ops_per_s", 1), 0)]
    if kind == "spawn":
        return [("ms", ("seconds", 1e3), 1)]
    if kind == "stream":
        return [
            ("MB/s", ("mb_per_s", 1), 1),
            ("items/s", ("ops_per_s", 1), 0),
            ("echo MB/s", ("request_mb_per_s", 1), 1),
            ("echoes/s", ("request_ops_per_s", 1), 0),
            ("ratio", ("ratio", 1), 2),
        ]
    return [("p50 µs", ("p50", 1e6), 1), ("p99 µs", ("p99", 1e6), 1)]


def _memory_table(lines: list[str], run: RunResults) -> None:
    if not run.memory:
        return
    lines.append(
        "Memory: a loop of 16 MiB echoes, one in flight, the parent's RSS (MiB); growth in "
        "payloads (16 MiB)"
    )
    lines.append(
        f"{'':<{_NAME}}{'echoes':>8}{'before':>9}{'peak':>9}{'end':>9}"
        f"{'peak growth':>13}{'2nd-1st half':>14}   load average"
    )
    mib = 1024 * 1024
    for key, loop in run.memory.items():
        contender = next(c for c in run.contenders if c.key == key)
        late = loop["late_growth"]
        flat = "-" if late is None else f"{late / MEMORY_SIZE:.2f}x"
        lines.append(
            f"{contender.name:<{_NAME}}{loop['echoes']:>8,}{loop['rss_before'] / mib:>9.1f}"
            f"{loop['peak'] / mib:>9.1f}{loop['rss_end'] / mib:>9.1f}"
            f"{loop['peak_growth'] / MEMORY_SIZE:>12.2f}x{flat:>14}"
            f"   {loop['load_before'][0]:.2f} -> {loop['load_after'][0]:.2f}"
        )
    lines.append("")


def _number(value: float | None, scale: float, digits: int) -> str:
    if value is None:
        return f"{'-':>12}"
    return f"{value * scale:>12,.{digits}f}"


def _headline_text(cell: CellResult, key: str) -> str:
    kind = cell.cell["kind"]
    if kind == "echo":
        value = cell.figure(key, "mb_per_s")
        return "" if value is None else f"{value:,.1f} MB/s"
    value = cell.figure(key)
    if value is None:
        return ""
    if kind == "rps":
        return f"{value:,.0f}/s"
    if kind == "spawn":
        return f"{value * 1e3:,.1f} ms"
    if kind == "stream":
        ratio = f"{cell.figure(key, 'ratio') or 0:.2f}x echo"
        if STREAM_CASES[cell.cell["case"]]["unit"] == "mb":
            return f"{cell.figure(key, 'mb_per_s') or 0:,.1f} MB/s ({ratio})"
        return f"{value:,.0f} items/s ({ratio})"
    return f"{value * 1e6:,.0f} µs"
