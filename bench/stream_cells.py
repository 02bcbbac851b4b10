"""The stream cells (issue 16, PROTOCOL.md 13): a stream beside one request per item, measured in
the same turn of the same worker, on the data channel.

A stream cell is aspect-ipc's alone (no baseline has streams); its ratio is within one contender:
the stream's rate over the request's, both taken in the same turn, in the order stream, request,
stream (half the budget each time for the stream), so that a drift of the machine during the turn
falls on both. The figures of a turn are the stream's (``ops_per_s``: items/s, ``mb_per_s``), the
request's (``request_ops_per_s``, ``request_mb_per_s``) and ``ratio``, the stream's over the
request's in the cell's unit (MB/s or items/s); a contender's ratio is the median of the rounds'.

- ``out_1mib`` (cell "stream 1 MiB out"): ``countTo`` with ``size`` 1 MiB, worker to parent,
  beside an ``echo`` of a 1 MiB payload, one at a time; MB/s counts the bytes crossing the
  channel: 1 MiB per item, 2 MiB per echo. Target: >= 0.9x.
- ``in_1mib`` ("stream 1 MiB in+out"): ``echoStream`` fed 1 MiB items, its echoes read (parent
  to worker, and back: the test workers have no stream that consumes binary items; sumStream
  takes numbers only), beside the same ``echo``; 2 MiB per item and per echo. Target: >= 0.9x.
- ``items_64`` ("stream 64 B out"): ``countTo`` with ``size`` 64, worker to parent, beside an
  ``echo`` of a 64-byte payload, one request at a time: items/s over requests/s. Target: >= 5x.

Every stream uses the default window (16). Each stream's final value and last item are checked.
"""

from __future__ import annotations

import time
from typing import Any

from aspect_ipc import ProcessHandle
from measure import Budget, payload

__all__ = ["STREAM_CASES", "measure_stream", "stream_cells", "stream_label"]

MIB = 1024 * 1024

STREAM_CASES: dict[str, dict[str, Any]] = {
    "out_1mib": {"size": MIB, "items": 32, "unit": "mb", "label": "stream 1 MiB out"},
    "in_1mib": {"size": MIB, "items": 32, "unit": "mb", "label": "stream 1 MiB in+out"},
    "items_64": {"size": 64, "items": 2000, "unit": "items", "label": "stream 64 B out"},
}
"""The cases: item size, items per stream, the unit of the ratio, the cell's label."""


def stream_cells() -> list[dict[str, Any]]:
    """The stream cells of a run, in the order they are measured and reported."""
    return [{"kind": "stream", "case": case} for case in STREAM_CASES]


def stream_label(cell: dict[str, Any]) -> str:
    return str(STREAM_CASES[cell["case"]]["label"])


async def measure_stream(
    handle: ProcessHandle, cell: dict[str, Any], budget: Budget
) -> dict[str, Any]:
    """One turn: the stream, the request, the stream again; their rates and the ratio."""
    case = STREAM_CASES[cell["case"]]
    size, per_stream = case["size"], case["items"]
    both_ways = cell["case"] == "in_1mib"  # echoStream: each item goes there and back
    data = payload(size)
    half = Budget(budget.seconds / 2, 1, 1, warm_up=False)
    if budget.warm_up:
        warm = budget.warmup()
        await _streams(handle, cell["case"], data, per_stream, warm)
        await _requests(handle, data, warm)
    items, stream_seconds = await _streams(handle, cell["case"], data, per_stream, half)
    requests, request_seconds = await _requests(handle, data, budget)
    more, seconds = await _streams(handle, cell["case"], data, per_stream, half)
    items, stream_seconds = items + more, stream_seconds + seconds
    ops_per_s = items / stream_seconds
    request_ops_per_s = requests / request_seconds
    mb_per_s = ops_per_s * size * (2 if both_ways else 1) / 1e6
    request_mb_per_s = request_ops_per_s * 2 * size / 1e6
    mb = case["unit"] == "mb"
    return {
        "ops": items,
        "seconds": stream_seconds,
        "ops_per_s": ops_per_s,
        "mb_per_s": mb_per_s,
        "requests": requests,
        "request_seconds": request_seconds,
        "request_ops_per_s": request_ops_per_s,
        "request_mb_per_s": request_mb_per_s,
        "ratio": mb_per_s / request_mb_per_s if mb else ops_per_s / request_ops_per_s,
    }


async def _streams(
    handle: ProcessHandle, case: str, data: bytes, per_stream: int, budget: Budget
) -> tuple[int, float]:
    """Whole streams of ``per_stream`` items until the budget is spent: (items, seconds)."""
    if budget.is_empty:
        return 0, 0.0
    clock = time.perf_counter
    items, streams = 0, 0
    start = clock()
    deadline = start + budget.seconds
    while streams < max(budget.min_ops, 1) or clock() < deadline:
        if case == "in_1mib":
            call = handle.stream_via_data("echoStream", {}, input=[data] * per_stream)
        else:
            call = handle.stream_via_data("countTo", {"n": per_stream, "size": len(data)})
        last: Any = None
        async for item in call:
            last = item
            items += 1
        _check(case, last, call.result, data, per_stream)
        streams += 1
    return items, clock() - start


async def _requests(handle: ProcessHandle, data: bytes, budget: Budget) -> tuple[int, float]:
    """``echo`` of ``[data]``, one at a time, until the budget is spent: (requests, seconds)."""
    if budget.is_empty:
        return 0, 0.0
    params = [data]
    clock = time.perf_counter
    requests = 0
    start = clock()
    deadline = start + budget.seconds
    while requests < max(budget.min_ops, 1) or clock() < deadline:
        await handle.request_via_data("echo", params)
        requests += 1
    seconds = clock() - start
    if await handle.request_via_data("echo", params) != params:
        raise RuntimeError(f"the echo of {len(data)} bytes came back altered")
    return requests, seconds


def _check(case: str, last: Any, result: Any, data: bytes, items: int) -> None:
    if result != {"count": items}:
        raise RuntimeError(f"stream {case}: final value {result!r}, expected count {items}")
    expected = data if case == "in_1mib" else (items - 1).to_bytes(8, "big")
    if last is None or bytes(last[: len(expected)]) != expected or len(last) != len(data):
        raise RuntimeError(f"stream {case}: the last item is wrong ({bytes(last or b'')[:16]!r})")
