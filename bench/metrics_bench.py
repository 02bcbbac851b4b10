"""The metrics row of the benchmark: small-request throughput with metrics on and off.

Two Go workers under one manager, one spawned with ``metrics=True`` and one with
``metrics=False``; each round measures both, in turn (the order alternates between rounds),
``MANY_IN_FLIGHT`` (64) small requests in flight on the data channel (``echo`` of
``SMALL_SIZE`` bytes). Reported: the median requests/s of each, and the median of the rounds'
on/off ratios with their spread; and the parent's CPU time per request (``time.process_time``),
which a busy shared machine disturbs less than the wall clock. The target (issue 4): throughput
on at least 0.95x of off. Reported, never asserted: the machine is shared.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from typing import Any

import anyio
from aspect_ipc import DataChannelOptions, ProcessHandle, ProcessManager
from contenders import find_worker
from measure import MANY_IN_FLIGHT, SMALL_SIZE

__all__ = ["format_metrics", "measure_metrics"]

TARGET = 0.95


async def _rate(handle: ProcessHandle, requests: int) -> tuple[float, float]:
    """Requests/s of ``requests`` echoes, ``MANY_IN_FLIGHT`` at a time, and the parent's CPU
    microseconds per request."""
    params = [b"x" * SMALL_SIZE]
    left = requests

    async def caller() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await handle.request_via_data("echo", params)

    start, cpu = time.perf_counter(), time.process_time()
    async with anyio.create_task_group() as task_group:
        for _ in range(MANY_IN_FLIGHT):
            task_group.start_soon(caller)
    cpu = time.process_time() - cpu
    return requests / (time.perf_counter() - start), 1e6 * cpu / requests


def measure_metrics(quick: bool, rounds: int) -> dict[str, Any]:
    """Medians of requests/s with metrics on and off, and of the rounds' on/off ratios."""
    worker = find_worker("go")
    if isinstance(worker, str):
        return {"skipped": worker}
    requests = 2000 if quick else 20_000
    options: dict[str, Any] = {
        "executable": worker.executable,
        "args": list(worker.args),
        "data_channel": DataChannelOptions(enabled=True),
    }

    async def main() -> dict[str, list[float]]:
        samples: dict[str, list[float]] = {
            key: [] for key in ("on", "off", "ratio", "cpu_on", "cpu_off", "cpu_ratio")
        }
        async with ProcessManager(namespace=f"bench-metrics-{os.getpid()}") as manager:
            handles = {
                "on": await manager.spawn("on", metrics=True, **options),
                "off": await manager.spawn("off", metrics=False, **options),
            }
            for handle in handles.values():
                await _rate(handle, requests // 10)  # warm-up
            for number in range(max(rounds, 1)):
                order = ("on", "off") if number % 2 == 0 else ("off", "on")
                runs = {key: await _rate(handles[key], requests) for key in order}
                (on, cpu_on), (off, cpu_off) = runs["on"], runs["off"]
                samples["on"].append(on)
                samples["off"].append(off)
                samples["ratio"].append(on / off)
                samples["cpu_on"].append(cpu_on)
                samples["cpu_off"].append(cpu_off)
                samples["cpu_ratio"].append(cpu_on / cpu_off)
        return samples

    samples = anyio.run(main)
    return {
        "requests": requests,
        "in_flight": MANY_IN_FLIGHT,
        "on": statistics.median(samples["on"]),
        "off": statistics.median(samples["off"]),
        "ratio": statistics.median(samples["ratio"]),
        "ratios": samples["ratio"],
        "cpu_us_on": statistics.median(samples["cpu_on"]),
        "cpu_us_off": statistics.median(samples["cpu_off"]),
        "cpu_ratio": statistics.median(samples["cpu_ratio"]),
        "cpu_ratios": samples["cpu_ratio"],
        "load_average": list(os.getloadavg()),
    }


def format_metrics(results: dict[str, Any]) -> str:
    """The metrics row and its target's verdict (reported, never asserted)."""
    if "skipped" in results:
        return f"Metrics overhead: skipped ({results['skipped']})"
    ratio = results["ratio"]
    spread = f"{min(results['ratios']):.3f}..{max(results['ratios']):.3f}"
    verdict = "met" if ratio >= TARGET else "MISSED"
    return (
        f"Metrics overhead: go worker, data channel, {results['in_flight']} in flight, "
        f"small echo; load {results['load_average']}\n"
        f"  metrics on  {results['on']:>10.0f} requests/s, "
        f"{results['cpu_us_on']:.2f} us parent CPU per request\n"
        f"  metrics off {results['off']:>10.0f} requests/s, "
        f"{results['cpu_us_off']:.2f} us parent CPU per request\n"
        f"  parent CPU per request on / off = {results['cpu_ratio']:.3f}x (rounds "
        f"{min(results['cpu_ratios']):.3f}..{max(results['cpu_ratios']):.3f})\n"
        f"  target: throughput on / off = {ratio:.3f}x (rounds {spread}) "
        f"(>= {TARGET}x: {verdict})"
    )


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    print(format_metrics(measure_metrics(quick, 3 if quick else 7)))
