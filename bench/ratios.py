"""Ratios of an aspect-ipc figure to the same figure of each baseline, as numbers and as text.

A ratio is always aspect-ipc / baseline. A figure that a baseline does not have (a cell it did
not run, a codec time of the raw socket, which has no codec) gives ``None``, printed ``n/a``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from baselines import BaselineResult

__all__ = ["SHORT", "Ratio", "format_ratio", "ratio_of", "ratios", "versus"]

SHORT = {"raw_socket": "raw", "mp_pipe": "mp.Pipe"}
"""Each baseline's name in a ratio: ``0.42x raw, 1.30x mp.Pipe``."""

Ratio = Callable[..., Any]
"""Given a baseline (:class:`BaselineResult`), aspect-ipc's figure divided by the baseline's; it
may raise or return None for a figure the baseline lacks. (``...``: the callers' lambdas bind
their loop variables as default arguments.)"""


def ratio_of(numerator: float | None, denominator: float | None) -> float | None:
    """``numerator / denominator``, or None when either is missing or the division means nothing."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    value = numerator / denominator
    return None if math.isnan(value) or math.isinf(value) else value


def ratios(baselines: Mapping[str, BaselineResult], ratio: Ratio) -> dict[str, float | None]:
    """{"vs_raw_socket": 0.4213, "vs_mp_pipe": 1.3, ...}, rounded; None where there is none."""
    values: dict[str, float | None] = {}
    for key, baseline in baselines.items():
        try:
            raw = ratio(baseline)
            value = None if raw is None else float(raw)
        except (AttributeError, KeyError, TypeError, ZeroDivisionError):
            value = None
        if value is not None and (math.isnan(value) or math.isinf(value)):
            value = None
        values[f"vs_{key}"] = None if value is None else round(value, 4)
    return values


def versus(baselines: Mapping[str, BaselineResult], ratio: Ratio) -> str:
    """``0.42x raw, 1.30x mp.Pipe``."""
    parts = []
    for key, value in ratios(baselines, ratio).items():
        short = SHORT.get(key.removeprefix("vs_"), key)
        parts.append(f"{format_ratio(value)} {short}")
    return ", ".join(parts)


def format_ratio(value: float | None) -> str:
    """``0.42x``, ``12.1x``, ``340x``, or ``n/a``."""
    if value is None:
        return "n/a"
    if value < 10:
        return f"{value:.2f}x"
    if value < 100:
        return f"{value:.1f}x"
    return f"{value:.0f}x"
