"""What every benchmark cell shares: time budgets, payloads and the figures derived from counts.

A *cell* is one measurement (one transport, one payload size, one number of requests in flight).
It runs until its time budget is spent **and** it has done a minimum number of operations, so that
slow cells (16 MiB payloads) still get a few samples and fast ones get many. Time is taken with
``time.perf_counter``. Nothing here judges a figure: the benchmark reports, it never fails on speed.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

__all__ = [
    "IN_FLIGHT",
    "MANY_IN_FLIGHT",
    "PAYLOAD_SIZES",
    "SMALL_SIZE",
    "Budget",
    "Latency",
    "Throughput",
    "payload",
    "size_label",
]

PAYLOAD_SIZES = (64, 4 * 1024, 64 * 1024, 1024 * 1024, 16 * 1024 * 1024)
"""Echo payload sizes in bytes: 64 B, 4 KiB, 64 KiB, 1 MiB, 16 MiB."""

IN_FLIGHT = 8
"""Requests in flight in the pipelined throughput cells."""

MANY_IN_FLIGHT = 64
"""Requests in flight in the small-requests-per-second cells."""

SMALL_SIZE = 64
"""Payload of a baseline's "small request" (an aspect-ipc small request is ~40-50 bytes)."""


@dataclass(frozen=True)
class Budget:
    """How long one contender runs one cell in one round: ``seconds`` of timed work, and at least
    ``min_ops`` operations (``min_samples`` samples in a cell that times each operation).

    Before the timed part, a warm-up of :meth:`warmup` (a tenth of the budget) unless
    ``warm_up`` is false: in a quick run, and with ``--fresh``, where the point is what a fresh
    process sees.
    """

    seconds: float
    min_ops: int
    min_samples: int
    warm_up: bool = True

    @classmethod
    def full(cls, seconds: float, *, warm_up: bool = True) -> Budget:
        """The budget of a real run."""
        return cls(seconds, min_ops=3, min_samples=100 if seconds >= 0.2 else 20, warm_up=warm_up)

    @classmethod
    def quick(cls) -> Budget:
        """A smoke-test budget: every cell runs, the numbers mean little."""
        return cls(seconds=0.02, min_ops=2, min_samples=10, warm_up=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Budget:
        return cls(**data)

    @property
    def is_empty(self) -> bool:
        """True for a budget that does nothing (the warm-up of a quick run)."""
        return self.seconds <= 0 and self.min_ops <= 0 and self.min_samples <= 0

    def warmup(self) -> Budget:
        """The warm-up before a cell: a tenth of the time, at least two operations (20 samples)."""
        if not self.warm_up:
            return Budget(seconds=0, min_ops=0, min_samples=0, warm_up=False)
        return Budget(seconds=self.seconds / 10, min_ops=2, min_samples=20, warm_up=False)


@dataclass(frozen=True)
class Throughput:
    """``ops`` echoes of ``size``-byte payloads, ``in_flight`` at a time, took ``seconds``.

    ``mb_per_s`` counts the payload bytes of both directions (2 x size per echo), in 10^6 bytes
    per second; framing and JSON-RPC envelopes are not counted.
    """

    size: int
    in_flight: int
    ops: int
    seconds: float

    @property
    def ops_per_s(self) -> float:
        return self.ops / self.seconds

    @property
    def mb_per_s(self) -> float:
        return 2 * self.size * self.ops / self.seconds / 1e6

    def figures(self) -> dict[str, Any]:
        """The cell's figures for the coordinator: counts, echoes/s and MB/s."""
        return {
            "ops": self.ops,
            "seconds": self.seconds,
            "ops_per_s": self.ops_per_s if self.seconds else 0.0,
            "mb_per_s": self.mb_per_s if self.seconds else 0.0,
        }


@dataclass(frozen=True)
class Latency:
    """Round-trip times in seconds of sequential small requests (one in flight)."""

    samples: tuple[float, ...]

    def percentile(self, fraction: float) -> float:
        """The nearest-rank percentile (``fraction`` 0.5 for p50, 0.99 for p99)."""
        ordered = sorted(self.samples)
        rank = min(len(ordered), max(1, math.ceil(fraction * len(ordered))))
        return ordered[rank - 1]

    @property
    def p50(self) -> float:
        return self.percentile(0.50)

    @property
    def p99(self) -> float:
        return self.percentile(0.99)

    def figures(self, prefix: str = "") -> dict[str, Any]:
        """The cell's figures for the coordinator, in seconds: p50, p99 and the sample count."""
        if not self.samples:
            return {f"{prefix}samples": 0}
        return {
            f"{prefix}p50": self.p50,
            f"{prefix}p99": self.p99,
            f"{prefix}samples": len(self.samples),
        }


def payload(size: int) -> bytes:
    """``size`` pseudo-random bytes (incompressible, like real binary data; same in every run)."""
    return random.Random(size).randbytes(size)


def size_label(size: int) -> str:
    """64 -> "64 B", 4096 -> "4 KiB", 16777216 -> "16 MiB"."""
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale and size % scale == 0:
            return f"{size // scale} {unit}"
    return f"{size} B"
