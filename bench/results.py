"""Everything one benchmark run measured: for the report, the targets and the chart."""

from __future__ import annotations

from dataclasses import dataclass, field

from baselines import BaselineResult
from seed import SeedPayload, WireCost
from worker_cells import WorkerResult

__all__ = ["RunResults"]


@dataclass
class RunResults:
    """The figures of one run: baselines by key, workers by language, the seed's wire costs."""

    sizes: tuple[int, ...]
    seeds: tuple[SeedPayload, ...]
    spawns: int
    baselines: dict[str, BaselineResult] = field(default_factory=dict)
    workers: dict[str, WorkerResult] = field(default_factory=dict)
    wire_costs: dict[str, dict[str, WireCost]] = field(default_factory=dict)
    """{seed payload key: {encoding: WireCost}} (seed.ENCODINGS)."""
    skipped: dict[str, str] = field(default_factory=dict)
    """Worker languages not measured, and why."""
