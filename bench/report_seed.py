"""The seed payloads' wire table and JSON: bytes on the wire, encode and decode time.

Measured in the coordinator process with the library's own codecs and framing (seed.py), once per
round, the forms one after the other in each round; each figure is the median over the rounds.
Ratios are aspect-ipc / baseline form, lower is better: bytes compare with the raw socket's packed
binary and with mp.Pipe's pickle, codec times with pickle only (the raw socket has no codec).
The round trips of the same payloads are interleaved cells like the others (report.py).
"""

from __future__ import annotations

from typing import Any

from ratios import format_ratio, ratio_of
from results import RunResults
from seed import WireCost

__all__ = ["wire_json", "wire_table"]

_FORMS = {
    "raw": "raw socket (packed)",
    "pickle": "mp.Pipe (pickle)",
    "control": "control (JSON line)",
    "data": "data (MessagePack)",
}
_VERSUS = (
    ("wire_bytes", "raw", "bytes", "raw"),
    ("wire_bytes", "pickle", "bytes", "pickle"),
    ("encode", "pickle", "enc", "pickle"),
    ("decode", "pickle", "dec", "pickle"),
)
"""(figure, baseline form, label, baseline name) of each wire ratio."""


def wire_table(lines: list[str], run: RunResults) -> None:
    """Append the wire table of every seed payload."""
    if not run.wire_costs:
        return
    lines.append("Seed payloads on the wire (the library's codecs + framing, in this process)")
    lines.append(
        "bytes: request and response as framed; encode/decode: median µs, request + response; "
        "ratio = aspect-ipc / baseline form, lower is better"
    )
    header = f"{'':<22}{'request B':>12}{'response B':>12}{'encode µs':>11}{'decode µs':>11}"
    for seed in run.seeds:
        costs = run.wire_costs.get(seed.key)
        if not costs:
            continue
        lines.append("")
        lines.append(f"{header}   {seed.label}")
        for encoding, cost in costs.items():
            row = (
                f"{_FORMS[encoding]:<22}{cost.request_bytes:>12,}{cost.response_bytes:>12,}"
                f"{_micros(cost.encode):>11}{_micros(cost.decode):>11}"
            )
            if encoding in ("control", "data"):
                row += "   " + ", ".join(
                    f"{label} {format_ratio(ratio)} {base}"
                    for label, base, ratio in _ratios(costs, cost)
                )
            lines.append(row)
    lines.append("")


def wire_json(run: RunResults) -> dict[str, Any]:
    """{payload key: {label, method, expected, wire: {encoding: figures and ratios}}}."""
    document: dict[str, Any] = {}
    for seed in run.seeds:
        costs = run.wire_costs.get(seed.key, {})
        wire: dict[str, Any] = {}
        for encoding, cost in costs.items():
            entry = cost.as_dict()
            if encoding in ("control", "data"):
                entry["ratios"] = {
                    f"{label}_vs_{base}": None if ratio is None else round(ratio, 4)
                    for label, base, ratio in _ratios(costs, cost)
                }
            wire[encoding] = entry
        document[seed.key] = {
            "label": seed.label,
            "method": seed.method,
            "expected": seed.expected,
            "packed_request_bytes": seed.packed_request,
            "wire": wire,
        }
    return document


def _ratios(costs: dict[str, WireCost], cost: WireCost) -> list[tuple[str, str, float | None]]:
    found = []
    for figure, form, label, base in _VERSUS:
        other = costs.get(form)
        value = ratio_of(getattr(cost, figure), getattr(other, figure)) if other else None
        found.append((label, base, value))
    return found


def _micros(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e6:,.1f}"
