"""The performance targets of issue 19, and whether this run met them. Reporting only.

Each target is a figure of the Go worker with the parent on asyncio, most often a ratio to a
baseline taken within the same rounds (results.py), compared with a threshold. The targets are
defined on fresh processes (``--fresh``): a long-lived run prints the same verdicts with a note.
The other aspect-ipc contenders (the Go worker on trio, the Python and Node workers) are shown
beside each verdict, with no target of their own. A figure that was not measured (a contender
skipped) is reported as such. Nothing here fails.
"""

from __future__ import annotations

import operator
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cells import MEMORY_SIZE, cell_label, headline
from measure import IN_FLIGHT, MANY_IN_FLIGHT
from results import RatioStat, RunResults

__all__ = [
    "TARGET_CONTENDER",
    "format_value",
    "TARGETS",
    "Target",
    "Verdict",
    "evaluate",
    "floor_lines",
    "summary_lines",
    "verdicts_json",
]

TARGET_CONTENDER = "go"
"""The contender the targets are about: the Go worker, the parent on asyncio."""

_SIXTEEN_MIB = 16 * 1024 * 1024
_COMPARE: dict[str, Callable[[float, float], bool]] = {">=": operator.ge, "<=": operator.le}

Figure = Callable[[RunResults, str], "tuple[float, str, str] | None"]
"""A target's figure for one contender key, where it comes from (a cell) and its spread over the
rounds (``[0.34-0.41]``, or ""); None: not measured."""


@dataclass(frozen=True)
class Target:
    """``figure`` compared with ``threshold`` by ``comparison``."""

    key: str
    text: str
    comparison: str
    threshold: float
    unit: str
    figure: Figure


@dataclass(frozen=True)
class Verdict:
    """A target, the Go worker's figure (None: not measured), and the other contenders'."""

    target: Target
    measured: float | None
    where: str
    spread: str
    others: dict[str, float]

    @property
    def met(self) -> bool | None:
        if self.measured is None:
            return None
        return _COMPARE[self.target.comparison](self.measured, self.target.threshold)


def _ratio(base: str, **match: Any) -> Figure:
    def figure(run: RunResults, key: str) -> tuple[float, str] | None:
        cell = run.cell(**match)
        stat = cell.ratio(key, base) if cell else None
        return (stat.median, cell_label(cell.cell), _spread(stat)) if stat and cell else None

    return figure


def _rps(run: RunResults, key: str) -> tuple[float, str] | None:
    cell = run.cell(kind="rps")
    value = cell.figure(key) if cell else None
    if cell is None or value is None:
        return None
    values = [r["ops_per_s"] for r in cell.rounds[key]]
    spread = f"[{min(values):,.0f}-{max(values):,.0f}]" if len(values) > 1 else ""
    return value, cell_label(cell.cell), spread


def _everywhere(base: str, kinds: tuple[str, ...]) -> Figure:
    """The worst ratio to ``base`` over every cell of these kinds (min for throughput, where
    higher is better; max for latency)."""

    def figure(run: RunResults, key: str) -> tuple[float, str] | None:
        found = []
        for cell in run.cells:
            if cell.cell["kind"] in kinds and (stat := cell.ratio(key, base)) is not None:
                found.append((stat.median, cell_label(cell.cell), _spread(stat)))
        if not found:
            return None
        throughput = headline({"kind": kinds[0]}) == "ops_per_s"
        return min(found) if throughput else max(found)

    return figure


def _within(case: str) -> Figure:
    """A stream cell's ratio, stream over request in the same turn (stream_cells.py)."""

    def figure(run: RunResults, key: str) -> tuple[float, str, str] | None:
        cell = run.cell(kind="stream", case=case)
        values = [r["ratio"] for r in cell.rounds.get(key, ())] if cell else []
        if cell is None or not values:
            return None
        median = statistics.median(values)
        spread = f"[{min(values):.2f}-{max(values):.2f}]" if len(values) > 1 else ""
        return median, cell_label(cell.cell), spread

    return figure


def _memory(name: str) -> Figure:
    def figure(run: RunResults, key: str) -> tuple[float, str] | None:
        loop = run.memory.get(key)
        if loop is None or loop[name] is None:
            return None
        return loop[name] / MEMORY_SIZE, f"{loop['echoes']:,} echoes", ""

    return figure


TARGETS = (
    Target("small_p50_vs_mp_pipe", "small round trip p50 <= 1.5x mp.Pipe", "<=", 1.5, "x mp.Pipe",
           _ratio("mp_pipe", kind="latency")),
    Target("rps_vs_mp_pipe", f"small requests/s, {MANY_IN_FLIGHT} in flight, >= 0.8x mp.Pipe", ">=",
           0.8, "x mp.Pipe", _ratio("mp_pipe", kind="rps")),
    Target("rps_100k", f"small requests/s, {MANY_IN_FLIGHT} in flight, >= 100,000", ">=", 100_000,
           "req/s", _rps),
    *(
        Target(f"echo_16mib_x{n}_vs_{base}", f"16 MiB echo x{n} >= {limit}x {short}", ">=", limit,
               f"x {short}", _ratio(base, kind="echo", size=_SIXTEEN_MIB, in_flight=n))
        for base, short, limit in (("mp_pipe", "mp.Pipe", 1.5), ("raw_socket", "raw", 0.6))
        for n in (1, IN_FLIGHT)
    ),
    Target("items_vs_mp_pipe", "processItems(1000) round trip p50 <= 1.0x mp.Pipe (pickle)", "<=",
           1.0, "x mp.Pipe", _ratio("mp_pipe", kind="seed", seed="processItems_1000")),
    *(
        target
        for base, short in (("grpc_go", "gRPC-Go"), ("grpc_python", "gRPC-Py"))
        for target in (
            Target(f"throughput_vs_{base}", f"throughput >= 1.5x {short}, every cell", ">=", 1.5,
                   f"x {short}", _everywhere(base, ("echo", "rps"))),
            Target(f"latency_vs_{base}", f"small round trip p50 <= 0.7x {short}", "<=", 0.7,
                   f"x {short}", _everywhere(base, ("latency",))),
        )
    ),
    Target("memory_peak", "16 MiB echo loop: parent RSS peak growth <= 4x payload", "<=", 4.0,
           "x payload", _memory("peak_growth")),
    Target("memory_flat", "16 MiB echo loop flat: later RSS peak growth <= 0.25x payload",
           "<=", 0.25, "x payload", _memory("late_growth")),
    # Issue 16's stream targets: ratios within one contender's turn (stream_cells.py).
    Target("stream_out_1mib", "1 MiB stream worker->parent MB/s >= 0.9x 1 MiB echo", ">=", 0.9,
           "x echo", _within("out_1mib")),
    Target("stream_in_1mib", "1 MiB stream parent->worker MB/s >= 0.9x 1 MiB echo", ">=", 0.9,
           "x echo", _within("in_1mib")),
    Target("stream_items_64", "64 B stream items/s >= 5x one request per item", ">=", 5.0,
           "x requests", _within("items_64")),
)  # fmt: skip
"""The targets of issue 19, in the order the issue lists them, then issue 16's."""


def evaluate(run: RunResults) -> list[Verdict]:
    """Every target's verdict for this run."""
    verdicts = []
    for target in TARGETS:
        measured, where, spread, others = None, "", "", {}
        for contender in run.aspect:
            found = target.figure(run, contender.key)
            if found is None:
                continue
            if contender.key == TARGET_CONTENDER:
                measured, where, spread = found
            else:
                others[contender.key] = found[0]
        verdicts.append(Verdict(target, measured, where, spread, others))
    return verdicts


def summary_lines(verdicts: list[Verdict], fresh: bool) -> list[str]:
    """The summary block that ends the printed report."""
    lines = [
        "Issues 19 and 16 targets (Go worker, parent on asyncio; ratios within one run; "
        "reporting only)",
    ]
    if not fresh:
        lines.append(
            "NOTE: the targets are defined with a fresh process per contender (--fresh); "
            "this run is long-lived"
        )
    lines.append(f"{'target':<68}{'measured':>26}   {'verdict':<9}{'where':<22}others")
    for verdict in verdicts:
        target = verdict.target
        value = format_value(verdict)
        met = {True: "met", False: "NOT MET", None: "-"}[verdict.met]
        others = ", ".join(f"{key} {_value(v, target.unit)}" for key, v in verdict.others.items())
        lines.append(f"{target.text:<68}{value:>26}   {met:<9}{verdict.where:<22}{others}".rstrip())
    met_count = sum(1 for v in verdicts if v.met)
    measured_count = sum(1 for v in verdicts if v.met is not None)
    lines.append(f"{met_count} of {measured_count} measured targets met ({len(verdicts)} in all)")
    lines.append("")
    return lines


def floor_lines(run: RunResults) -> list[str]:
    """The small round trip's floor beside the first target: what a bare asyncio client
    (floor.py) got from each worker language in the same turns, over mp.Pipe, and aspect-ipc
    over it. Empty when no floor was measured (a long-lived run on trio only, say)."""
    cell = run.cell(kind="latency")
    if cell is None:
        return []
    parts = []
    for contender in run.aspect:
        over_pipe = cell.ratio(contender.key, "mp_pipe", "floor_p50")
        rounds = cell.rounds.get(contender.key, ())
        ours = [r["p50"] / r["floor_p50"] for r in rounds if r.get("floor_p50") and r.get("p50")]
        if over_pipe is None or not ours:
            continue
        spread = f" [{min(ours):.2f}-{max(ours):.2f}]" if len(ours) > 1 else ""
        parts.append(
            f"{contender.key} {over_pipe.median:.2f}x mp.Pipe {_spread(over_pipe)}, "
            f"aspect-ipc {statistics.median(ours):.2f}x the floor{spread}"
        )
    if not parts:
        return []
    return [
        "Floor of the small round trip (a bare asyncio client, bench/floor.py, to a worker of "
        "the same language, in the same turns): " + "; ".join(parts),
        "",
    ]


def verdicts_json(verdicts: list[Verdict]) -> list[dict[str, Any]]:
    """The targets and their verdicts, for the JSON document."""
    return [
        {
            "key": v.target.key,
            "target": v.target.text,
            "contender": TARGET_CONTENDER,
            "comparison": v.target.comparison,
            "threshold": v.target.threshold,
            "unit": v.target.unit,
            "measured": None if v.measured is None else round(v.measured, 4),
            "where": v.where,
            "spread": v.spread,
            "met": v.met,
            "others": {key: round(value, 4) for key, value in v.others.items()},
        }
        for v in verdicts
    ]


def format_value(verdict: Verdict) -> str:
    """``0.37x [0.34-0.41]``, ``10,774/s``, or ``not measured``."""
    if verdict.measured is None:
        return "not measured"
    value = _value(verdict.measured, verdict.target.unit)
    return f"{value} {verdict.spread}" if verdict.spread else value


def _spread(stat: RatioStat) -> str:
    return f"[{stat.low:.2f}-{stat.high:.2f}]" if stat.rounds > 1 else ""


def _value(value: float, unit: str) -> str:
    if unit == "req/s":
        return f"{value:,.0f}/s"
    return f"{value:.2f}{unit.split(' ')[0]}"
