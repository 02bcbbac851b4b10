"""Ratios as text: ``0.42x``, and a round-by-round ratio with its spread, ``0.42x [0.40-0.45]``.

A ratio is always aspect-ipc / baseline. Throughput and requests/s: higher is better; latency,
round trips, spawn to ready, wire bytes and codec times: lower is better.
"""

from __future__ import annotations

import math

from results import RatioStat

__all__ = ["format_ratio", "format_stat", "ratio_of"]


def ratio_of(numerator: float | None, denominator: float | None) -> float | None:
    """``numerator / denominator``, or None when either is missing or the division means nothing."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    value = numerator / denominator
    return None if math.isnan(value) or math.isinf(value) else value


def format_ratio(value: float | None) -> str:
    """``0.42x``, ``12.1x``, ``340x``, or ``n/a``."""
    if value is None:
        return "n/a"
    if value < 10:
        return f"{value:.2f}x"
    if value < 100:
        return f"{value:.1f}x"
    return f"{value:.0f}x"


def format_stat(stat: RatioStat | None) -> str:
    """``0.42x [0.40-0.45]``: the median of the rounds' ratios, then the lowest and highest."""
    if stat is None:
        return "n/a"
    if stat.rounds == 1:
        return format_ratio(stat.median)
    low, high = format_ratio(stat.low).rstrip("x"), format_ratio(stat.high).rstrip("x")
    return f"{format_ratio(stat.median)} [{low}-{high}]"
