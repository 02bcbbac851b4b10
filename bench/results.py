"""Everything one benchmark run measured, and the ratios taken within each round.

A cell's figures are kept per round and per contender. A contender's figure for the cell is the
median over the rounds; a ratio is taken in each round between two contenders that ran back to
back in it (aspect-ipc / baseline), and reported as the median of those ratios with their spread
(lowest and highest), so that a load spike during one contender's turn shows as a wide spread
instead of a wrong verdict.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any

from cells import Cell, headline
from contenders import Contender
from seed import SeedPayload, WireCost

__all__ = ["CellResult", "RatioStat", "RunResults"]


@dataclass(frozen=True)
class RatioStat:
    """A ratio's median over the rounds and its spread (lowest, highest)."""

    median: float
    low: float
    high: float
    rounds: int

    def as_json(self) -> dict[str, Any]:
        return {
            "median": round(self.median, 4),
            "low": round(self.low, 4),
            "high": round(self.high, 4),
            "rounds": self.rounds,
        }


@dataclass
class CellResult:
    """One cell: each contender's figures per round, and the load average around it."""

    cell: Cell
    rounds: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    load_before: tuple[float, float, float] = (0.0, 0.0, 0.0)
    load_after: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def figure(self, key: str, name: str | None = None) -> float | None:
        """The median over the rounds of contender ``key``'s figure ``name`` (default: the
        cell's headline figure); None if it was not measured."""
        values = [
            r[name or headline(self.cell)]
            for r in self.rounds.get(key, ())
            if _has(r, name or headline(self.cell))
        ]
        return statistics.median(values) if values else None

    def ratio(self, key: str, base: str, name: str | None = None) -> RatioStat | None:
        """``key``'s figure ``name`` over ``base``'s headline figure, round by round."""
        top = name or headline(self.cell)
        bottom = headline(self.cell)
        values = []
        for mine, theirs in zip(self.rounds.get(key, ()), self.rounds.get(base, ()), strict=False):
            if _has(mine, top) and _has(theirs, bottom) and theirs[bottom] > 0:
                values.append(mine[top] / theirs[bottom])
        if not values:
            return None
        return RatioStat(statistics.median(values), min(values), max(values), len(values))

    def as_json(self, contenders: list[Contender]) -> dict[str, Any]:
        bases = [c.key for c in contenders if not c.is_aspect]
        entry: dict[str, Any] = {
            "cell": self.cell,
            "headline": headline(self.cell),
            "load_average_before": self.load_before,
            "load_average_after": self.load_after,
            "contenders": {},
        }
        for contender in contenders:
            rounds = self.rounds.get(contender.key)
            if not rounds:
                continue
            names = sorted({name for r in rounds for name in r if _is_number(r[name])})
            item: dict[str, Any] = {
                "median": {name: self.figure(contender.key, name) for name in names},
                "rounds": rounds,
            }
            if contender.is_aspect:
                item["ratios"] = {
                    base: stat.as_json()
                    for base in bases
                    if (stat := self.ratio(contender.key, base))
                }
                for prefix in ("control_", "floor_"):  # other rows of the cell (report.py)
                    if f"{prefix}p50" in names:
                        item[f"{prefix}ratios"] = {
                            base: stat.as_json()
                            for base in bases
                            if (stat := self.ratio(contender.key, base, f"{prefix}p50"))
                        }
            entry["contenders"][contender.key] = item
        return entry


@dataclass
class RunResults:
    """The figures of one run: the interleaved cells, the memory loops, the seed's wire costs."""

    contenders: list[Contender]
    seeds: tuple[SeedPayload, ...]
    rounds: int
    fresh: bool
    cells: list[CellResult] = field(default_factory=list)
    memory: dict[str, dict[str, Any]] = field(default_factory=dict)
    """{aspect-ipc contender key: the memory loop's figures (aspect_cells._memory_loop)}."""
    wire_costs: dict[str, dict[str, WireCost]] = field(default_factory=dict)
    """{seed payload key: {encoding: WireCost}} (seed.ENCODINGS)."""
    skipped: list[str] = field(default_factory=list)
    """Contenders not measured, and why."""

    def cell(self, **match: Any) -> CellResult | None:
        """The cell whose parameters include ``match`` (``kind="echo", size=64, in_flight=1``)."""
        for result in self.cells:
            if all(result.cell.get(k) == v for k, v in match.items()):
                return result
        return None

    @property
    def baselines(self) -> list[Contender]:
        return [c for c in self.contenders if not c.is_aspect]

    @property
    def aspect(self) -> list[Contender]:
        return [c for c in self.contenders if c.is_aspect]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _has(figures: dict[str, Any], name: str) -> bool:
    value = figures.get(name)
    return _is_number(value) and not math.isnan(value)
