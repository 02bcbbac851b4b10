"""The performance targets of issue 8, and whether this run met them. Reporting only.

Each target is a figure of one worker language (the Go worker unless the target says otherwise),
often a ratio to a baseline of the same run, compared with a threshold. A target whose figure was
not measured (its worker skipped, say) is reported as such. Nothing here fails: the benchmark
reports, it does not judge CI.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from measure import IN_FLIGHT, MANY_IN_FLIGHT
from ratios import ratio_of
from results import RunResults
from worker_cells import WORKER_NAMES, WorkerResult

__all__ = ["TARGETS", "Target", "Verdict", "evaluate", "summary_lines", "verdicts_json"]

_SIXTEEN_MIB = 16 * 1024 * 1024
_COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "<": operator.lt,
}

Figure = Callable[[RunResults, WorkerResult], float | None]
"""A target's figure for one worker, from the run; None if it was not measured."""


@dataclass(frozen=True)
class Target:
    """``figure`` of the ``worker`` worker, compared with ``threshold`` by ``comparison``."""

    key: str
    text: str
    worker: str
    comparison: str
    threshold: float
    unit: str
    figure: Figure


@dataclass(frozen=True)
class Verdict:
    """A target, the figure measured for its worker (None: not measured), and the others'."""

    target: Target
    measured: float | None
    others: dict[str, float]

    @property
    def met(self) -> bool | None:
        if self.measured is None:
            return None
        compare = _COMPARISONS[self.target.comparison]
        return compare(self.measured, self.target.threshold)


def _echo_16mib(baseline: str, in_flight: int) -> Figure:
    def figure(run: RunResults, worker: WorkerResult) -> float | None:
        cell = worker.throughput.get((_SIXTEEN_MIB, in_flight))
        base = run.baselines.get(baseline)
        base_cell = base.throughput.get((_SIXTEEN_MIB, in_flight)) if base else None
        if cell is None or base_cell is None:
            return None
        return ratio_of(cell.ops_per_s, base_cell.ops_per_s)

    return figure


def _small_data_p50(run: RunResults, worker: WorkerResult) -> float | None:
    latency = worker.latency.get("data")
    base = run.baselines.get("raw_socket")
    if latency is None or base is None or base.latency is None:
        return None
    return ratio_of(latency.p50, base.latency.p50)


def _small_rps(run: RunResults, worker: WorkerResult) -> float | None:
    return worker.small_rps.ops_per_s if worker.small_rps else None


def _items_data_p50_ms(run: RunResults, worker: WorkerResult) -> float | None:
    latency = worker.seed.get(("processItems_1000", "data"))
    return latency.p50 * 1e3 if latency and latency.samples else None


def _spawn_ms(run: RunResults, worker: WorkerResult) -> float | None:
    return worker.spawn_median * 1e3 if worker.spawn_seconds else None


TARGETS = (
    *(
        Target(
            key=f"echo_16mib_x{in_flight}_vs_raw_socket",
            text=f"16 MiB echo, {in_flight} in flight, >= 0.60x raw socket",
            worker="go",
            comparison=">=",
            threshold=0.60,
            unit="x raw",
            figure=_echo_16mib("raw_socket", in_flight),
        )
        for in_flight in (1, IN_FLIGHT)
    ),
    *(
        Target(
            key=f"echo_16mib_x{in_flight}_vs_mp_pipe",
            text=f"16 MiB echo, {in_flight} in flight, >= 1.5x mp.Pipe",
            worker="go",
            comparison=">=",
            threshold=1.5,
            unit="x mp.Pipe",
            figure=_echo_16mib("mp_pipe", in_flight),
        )
        for in_flight in (1, IN_FLIGHT)
    ),
    Target(
        key="small_data_p50_vs_raw_socket",
        text="small data request p50 <= 1.5x raw socket",
        worker="go",
        comparison="<=",
        threshold=1.5,
        unit="x raw",
        figure=_small_data_p50,
    ),
    Target(
        key="small_rps_100k",
        text=f"small requests/s, {MANY_IN_FLIGHT} in flight, >= 100,000",
        worker="go",
        comparison=">=",
        threshold=100_000,
        unit="req/s",
        figure=_small_rps,
    ),
    Target(
        key="small_rps_peer",
        text=f"small requests/s, {MANY_IN_FLIGHT} in flight, >= 176,000 (the peer)",
        worker="go",
        comparison=">=",
        threshold=176_000,
        unit="req/s",
        figure=_small_rps,
    ),
    Target(
        key="process_items_data_p50",
        text="processItems(1000) data round trip p50 < 1 ms",
        worker="go",
        comparison="<",
        threshold=1.0,
        unit="ms",
        figure=_items_data_p50_ms,
    ),
    *(
        Target(
            key=f"spawn_to_ready_{name}",
            text=f"spawn to ready, {name} worker, < {limit} ms",
            worker=name,
            comparison="<",
            threshold=limit,
            unit="ms",
            figure=_spawn_ms,
        )
        for name, limit in (("go", 30), ("node", 150), ("python", 250))
    ),
)
"""The targets of issue 8, in the order the issue lists them."""


def evaluate(run: RunResults) -> list[Verdict]:
    """Every target's verdict for this run."""
    verdicts = []
    for target in TARGETS:
        values: dict[str, float] = {}
        for name, worker in run.workers.items():
            value = target.figure(run, worker)
            if value is not None:
                values[name] = value
        measured = values.pop(target.worker, None)
        # Spawn targets are per language: the other languages' figures have their own lines.
        others = {} if target.key.startswith("spawn_") else values
        verdicts.append(Verdict(target, measured, others))
    return verdicts


def summary_lines(verdicts: list[Verdict]) -> list[str]:
    """The summary block that ends the printed report."""
    lines = [
        "Issue 8 targets (this run; a Go worker unless said; reporting only, never failing)",
        f"{'target':<56}{'measured':>16}   {'verdict':<10}other workers",
    ]
    for verdict in verdicts:
        target = verdict.target
        measured = (
            "not measured" if verdict.measured is None else _value(verdict.measured, target.unit)
        )
        met = {True: "met", False: "NOT MET", None: "-"}[verdict.met]
        others = ", ".join(
            f"{name} {_value(verdict.others[name], target.unit)}"
            for name in WORKER_NAMES
            if name in verdict.others
        )
        lines.append(f"{target.text:<56}{measured:>16}   {met:<10}{others}".rstrip())
    met_count = sum(1 for v in verdicts if v.met)
    measured_count = sum(1 for v in verdicts if v.met is not None)
    lines.append(f"{met_count} of {measured_count} measured targets met ({len(verdicts)} in all)")
    lines.append("")
    return lines


def verdicts_json(verdicts: list[Verdict]) -> list[dict[str, Any]]:
    """The targets and their verdicts, for the JSON document."""
    return [
        {
            "key": v.target.key,
            "target": v.target.text,
            "worker": v.target.worker,
            "comparison": v.target.comparison,
            "threshold": v.target.threshold,
            "unit": v.target.unit,
            "measured": None if v.measured is None else round(v.measured, 4),
            "met": v.met,
            "other_workers": {name: round(value, 4) for name, value in v.others.items()},
        }
        for v in verdicts
    ]


def _value(value: float, unit: str) -> str:
    if unit == "req/s":
        return f"{value:,.0f} req/s"
    if unit == "ms":
        return f"{value:.2f} ms" if value < 10 else f"{value:.0f} ms"
    return f"{value:.2f}{unit}"
