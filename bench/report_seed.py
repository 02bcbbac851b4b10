"""The seed payloads' tables and JSON: wire bytes and codec time, then round trips per language.

Ratios are aspect-ipc / baseline, lower is better in both tables. Bytes compare with the raw
socket's packed binary and with mp.Pipe's pickle; codec times only with pickle, since the raw
socket has no codec (its encode and decode ratios are ``n/a``).
"""

from __future__ import annotations

from typing import Any

from baselines import BaselineResult
from measure import Latency
from ratios import Ratio, format_ratio, ratio_of, ratios, versus
from results import RunResults
from seed import CHANNELS, WireCost

__all__ = ["seed_json", "seed_tables"]

_FORMS = {
    "raw": "raw socket (packed)",
    "pickle": "mp.Pipe (pickle)",
    "control": "control (JSON line)",
    "data": "data (MessagePack)",
}
_BASELINE_ENCODING = {"raw_socket": "raw", "mp_pipe": "pickle"}
_WIRE_FIGURES = ("wire_bytes", "encode", "decode")


def seed_tables(lines: list[str], run: RunResults) -> None:
    """Append the two seed tables: wire costs, then round trips."""
    if not run.seeds:
        return
    _wire_table(lines, run)
    _round_trip_table(lines, run)


def seed_json(run: RunResults) -> dict[str, Any]:
    """{payload key: {label, method, expected, wire: {...}, round_trip: {...}}}, with ratios."""
    document: dict[str, Any] = {}
    for seed in run.seeds:
        costs = run.wire_costs.get(seed.key, {})
        wire: dict[str, Any] = {}
        for encoding, cost in costs.items():
            entry = cost.as_dict()
            if encoding in ("control", "data"):
                entry["ratios"] = {
                    figure: ratios(run.baselines, _cost_ratio(costs, cost, figure))
                    for figure in _WIRE_FIGURES
                }
            wire[encoding] = entry
        round_trips: dict[str, Any] = {}
        for name, worker in run.workers.items():
            for channel in CHANNELS:
                latency = worker.seed.get((seed.key, channel))
                if latency is None:
                    continue
                entry = latency.as_dict()
                for quantile in ("p50", "p99"):
                    entry[f"{quantile}_ratios"] = ratios(
                        run.baselines,
                        lambda b, q=quantile, v=latency, k=seed.key: _latency_ratio(v, b, k, q),
                    )
                round_trips.setdefault(name, {})[channel] = entry
        document[seed.key] = {
            "label": seed.label,
            "method": seed.method,
            "expected": seed.expected,
            "packed_request_bytes": seed.packed_request,
            "wire": wire,
            "round_trip": round_trips,
        }
    return document


def _wire_table(lines: list[str], run: RunResults) -> None:
    lines.append("Seed payloads on the wire (the library's codecs + framing, in this process)")
    lines.append(
        "bytes: request and response as framed; encode/decode: median µs, request + response "
        "(both ends' codec work if both were Python)"
    )
    lines.append(
        "raw socket: fixed-width binary, no codec; mp.Pipe: pickle, as Connection.send/recv; "
        "ratio = aspect-ipc / baseline, lower is better"
    )
    header = f"{'':<22}{'request B':>12}{'response B':>12}{'encode µs':>11}{'decode µs':>11}"
    for seed in run.seeds:
        costs = run.wire_costs.get(seed.key)
        if not costs:
            continue
        lines.append("")
        lines.append(f"{header}   {seed.label}: vs baselines")
        for encoding, cost in costs.items():
            row = (
                f"{_FORMS[encoding]:<22}{cost.request_bytes:>12,}{cost.response_bytes:>12,}"
                f"{_micros(cost.encode):>11}{_micros(cost.decode):>11}"
            )
            if encoding in ("control", "data"):
                row += "   " + _wire_versus(run, costs, cost)
            lines.append(row)
    lines.append("")


def _wire_versus(run: RunResults, costs: dict[str, WireCost], cost: WireCost) -> str:
    """``bytes 2.3x raw, 1.9x mp.Pipe; enc 15x, dec 4.7x mp.Pipe`` (the raw socket has no codec)."""
    text = f"bytes {versus(run.baselines, _cost_ratio(costs, cost, 'wire_bytes'))}"
    pipe = run.baselines.get("mp_pipe")
    if pipe is not None:
        encode, decode = (_cost_ratio(costs, cost, figure)(pipe) for figure in ("encode", "decode"))
        text += f"; enc {format_ratio(encode)}, dec {format_ratio(decode)} mp.Pipe"
    return text


def _round_trip_table(lines: list[str], run: RunResults) -> None:
    lines.append(
        "Seed payloads, round trip, one in flight (aspect-ipc: JSON on control, MessagePack on "
        "data; the worker computes)"
    )
    lines.append(
        "raw socket: the packed bytes, answered without any work; mp.Pipe: pickled, the server "
        "computes in Python"
    )
    lines.append("ratio = aspect-ipc / baseline, lower is faster")
    for seed in run.seeds:
        lines.append("")
        lines.append(
            f"{seed.label:<24}{'p50 µs':>11}{'p99 µs':>11}   "
            f"{'p50 vs baselines':<27}p99 vs baselines"
        )
        for result in run.baselines.values():
            latency = result.seed.get(seed.key)
            if latency is not None and latency.samples:
                lines.append(_latency_row(result.name, latency, "", ""))
        for name, worker in run.workers.items():
            for channel in CHANNELS:
                latency = worker.seed.get((seed.key, channel))
                if latency is None or not latency.samples:
                    continue
                p50, p99 = (
                    versus(
                        run.baselines,
                        lambda b, q=quantile, v=latency, k=seed.key: _latency_ratio(v, b, k, q),
                    )
                    for quantile in ("p50", "p99")
                )
                lines.append(_latency_row(f"{name} {channel}", latency, p50, p99))
    lines.append("")


def _latency_row(label: str, latency: Latency, p50: str, p99: str) -> str:
    p50_us, p99_us = latency.p50 * 1e6, latency.p99 * 1e6
    return f"{label:<24}{p50_us:>11,.1f}{p99_us:>11,.1f}   {p50:<27}{p99}".rstrip()


def _cost_ratio(costs: dict[str, WireCost], cost: WireCost, figure: str) -> Ratio:
    """One wire figure of aspect-ipc's ``cost`` over the same figure of a baseline's form."""

    def ratio(baseline: BaselineResult) -> float | None:
        base = costs.get(_BASELINE_ENCODING.get(baseline.key, ""))
        if base is None:
            return None
        return ratio_of(getattr(cost, figure), getattr(base, figure))

    return ratio


def _latency_ratio(latency: Latency, baseline: BaselineResult, key: str, quantile: str) -> Any:
    base = baseline.seed.get(key)
    if base is None or not base.samples:
        return None
    return ratio_of(getattr(latency, quantile), getattr(base, quantile))


def _micros(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e6:,.1f}"
