"""The pool rows of the benchmark: tiny tasks through pools of 2 workers, and CPU-bound spins.

Tiny tasks: ``add`` of two integers, ``TASKS`` times, through ``pool.map`` of 2 workers of each
language, with the async API and the blocking one (aspect_ipc.sync), against the standard
library doing the same addition in Python: ``ProcessPoolExecutor(2).map`` with chunksize 1 and
its best chunksize of ``CHUNKSIZES``, and ``multiprocessing.Pool(2).imap_unordered``
(chunksize 1). Also the cost of one small request, one after the other (``pool.request_via_data``
of ``add``), async and blocking. CPU-bound: ``spin`` of 1 ms through pools of 1 and 2 Go workers
started with ``GOMAXPROCS=1`` (a Go worker runs requests in parallel on every core by itself:
without it one worker already uses both cores), and the speed-up from 1 to 2.

Every figure is taken in rounds (each contender in turn in every round) and reported as the
median; start-up is never timed, and every timed run follows a short warm-up. Only the ratios
of one run mean anything: the machine is shared. Nothing here is asserted.
"""

from __future__ import annotations

import multiprocessing
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import anyio
from aspect_ipc import DataChannelOptions, ProcessManager
from aspect_ipc import sync as blocking
from contenders import Contender, find_worker

__all__ = ["format_pools", "measure_pools"]

TASKS = 4000
CHUNKSIZES = (1, 16, 128, 512)
SPIN_MICROSECONDS = 1000
DATA = DataChannelOptions(enabled=True)


def _add(pair: tuple[int, int]) -> int:
    return pair[0] + pair[1]


def _pairs(n: int) -> list[tuple[int, int]]:
    return [(i, 1000) for i in range(n)]


def _params(n: int) -> list[dict[str, int]]:
    return [{"a": i, "b": 1000} for i in range(n)]


def _options(worker: Contender) -> dict[str, Any]:
    return {"executable": worker.executable, "args": list(worker.args), "data_channel": DATA}


def _async_map(worker: Contender, tasks: int, method: str = "add", size: int = 2) -> float:
    """Seconds for ``tasks`` calls through ``pool.map`` (async API)."""

    async def main() -> float:
        async with ProcessManager(namespace="bench-pool") as manager:
            options = _options(worker)
            if method == "spin":  # one core per Go worker, as one process per core elsewhere
                options["env"] = {"GOMAXPROCS": "1"}
            pool = await manager.spawn_pool("p", size, **options)
            items = _items(method, tasks)
            [_ async for _ in pool.map(method, items[: max(tasks // 10, 20)])]  # warm-up
            start = time.perf_counter()
            async for _ in pool.map(method, items):
                pass
            return time.perf_counter() - start

    return anyio.run(main)


def _blocking_map(worker: Contender, tasks: int) -> float:
    with blocking.ProcessManager("bench-pool") as manager:
        pool = manager.spawn_pool("p", 2, **_options(worker))
        items = _params(tasks)
        list(pool.map("add", items[: tasks // 10]))
        start = time.perf_counter()
        for _ in pool.map("add", items):
            pass
        return time.perf_counter() - start


def _async_request(worker: Contender, calls: int) -> float:
    """Seconds per small request, one after the other."""

    async def main() -> float:
        async with ProcessManager(namespace="bench-pool") as manager:
            pool = await manager.spawn_pool("p", 2, **_options(worker))
            for _ in range(calls // 10):
                await pool.request_via_data("add", {"a": 1, "b": 2})
            start = time.perf_counter()
            for _ in range(calls):
                await pool.request_via_data("add", {"a": 1, "b": 2})
            return (time.perf_counter() - start) / calls

    return anyio.run(main)


def _blocking_request(worker: Contender, calls: int) -> float:
    with blocking.ProcessManager("bench-pool") as manager:
        pool = manager.spawn_pool("p", 2, **_options(worker))
        for _ in range(calls // 10):
            pool.request_via_data("add", {"a": 1, "b": 2})
        start = time.perf_counter()
        for _ in range(calls):
            pool.request_via_data("add", {"a": 1, "b": 2})
        return (time.perf_counter() - start) / calls


def _executor(tasks: int, chunksize: int) -> float:
    with ProcessPoolExecutor(2) as executor:
        list(executor.map(_add, _pairs(tasks // 10), chunksize=chunksize))
        start = time.perf_counter()
        list(executor.map(_add, _pairs(tasks), chunksize=chunksize))
        return time.perf_counter() - start


def _mp_pool(tasks: int) -> float:
    with multiprocessing.Pool(2) as pool:
        list(pool.imap_unordered(_add, _pairs(tasks // 10)))
        start = time.perf_counter()
        list(pool.imap_unordered(_add, _pairs(tasks)))
        return time.perf_counter() - start


def _items(method: str, n: int) -> list[dict[str, int]]:
    if method == "spin":
        return [{"microseconds": SPIN_MICROSECONDS}] * n
    return _params(n)


def measure_pools(workers: list[str], quick: bool, rounds: int) -> dict[str, Any]:
    """Every pool figure, as medians over ``rounds``: tasks/s, seconds per request, speed-up."""
    tasks = 400 if quick else TASKS
    calls = 200 if quick else 2000
    spins = 100 if quick else 1000
    runs: dict[str, Callable[[], float]] = {}
    contenders = {name: find_worker(name) for name in workers}
    for name, worker in contenders.items():
        if isinstance(worker, str):
            print(f"note: no pool rows for {name}: {worker}", file=sys.stderr)
            continue
        runs[f"{name} pool, async map"] = lambda w=worker: tasks / _async_map(w, tasks)
        runs[f"{name} pool, blocking map"] = lambda w=worker: tasks / _blocking_map(w, tasks)
        runs[f"{name} pool, async request (us)"] = lambda w=worker: 1e6 * _async_request(w, calls)
        runs[f"{name} pool, blocking request (us)"] = lambda w=worker: (
            1e6 * _blocking_request(w, calls)
        )
    for chunksize in CHUNKSIZES:
        runs[f"ProcessPoolExecutor(2).map chunksize {chunksize}"] = lambda c=chunksize: (
            tasks / _executor(tasks, c)
        )
    runs["multiprocessing.Pool(2).imap_unordered"] = lambda: tasks / _mp_pool(tasks)
    go = contenders.get("go")
    if isinstance(go, Contender):
        for size in (1, 2):
            runs[f"go pool of {size}, spin 1 ms (tasks/s)"] = lambda s=size: (
                spins / _async_map(go, spins, "spin", s)
            )
    samples: dict[str, list[float]] = {key: [] for key in runs}
    for _ in range(max(rounds, 1)):
        for key, run in runs.items():
            samples[key].append(run())
    return {
        "tasks": tasks,
        "figures": {key: statistics.median(values) for key, values in samples.items()},
        "load_average": list(_load()),
    }


def format_pools(results: dict[str, Any]) -> str:
    """The pool rows and the verdicts of their targets (reported, never asserted)."""
    figures: dict[str, float] = results["figures"]
    lines = [f"Pools: {results['tasks']} tiny tasks (add), medians; load {results['load_average']}"]
    for key, value in figures.items():
        unit = "" if key.endswith("(us)") or "(tasks/s)" in key else " tasks/s"
        lines.append(f"  {key:<48} {value:>10.1f}{unit}")
    executors = {k: v for k, v in figures.items() if k.startswith("ProcessPoolExecutor")}
    chunk1 = figures.get("ProcessPoolExecutor(2).map chunksize 1")
    if executors:
        best = max(executors, key=lambda k: executors[k])
        lines.append(f"  best executor chunksize: {best.rsplit(' ', 1)[1]}")
    for name in ("python", "node", "go"):
        async_rate = figures.get(f"{name} pool, async map")
        if async_rate is not None and chunk1:
            ratio = async_rate / chunk1
            verdict = "met" if ratio >= 1 else "MISSED"
            lines.append(f"  target {name}: async map / executor chunksize 1 = {ratio:.2f}x "
                         f"(>= 1x: {verdict})")  # fmt: skip
        a = figures.get(f"{name} pool, async request (us)")
        b = figures.get(f"{name} pool, blocking request (us)")
        if a and b:
            verdict = "met" if b / a <= 1.3 else "MISSED"
            lines.append(f"  target {name}: blocking / async per request = {b / a:.2f}x "
                         f"(<= 1.3x: {verdict})")  # fmt: skip
    one = figures.get("go pool of 1, spin 1 ms (tasks/s)")
    two = figures.get("go pool of 2, spin 1 ms (tasks/s)")
    if one and two:
        verdict = "met" if two / one >= 1.8 else "MISSED"
        lines.append(f"  target: spin speed-up 1 -> 2 Go workers = {two / one:.2f}x "
                     f"(>= 1.8x: {verdict})")  # fmt: skip
    return "\n".join(lines)


def _load() -> tuple[float, float, float]:
    import os

    return os.getloadavg()


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    print(format_pools(measure_pools(["python", "node", "go"], quick, 1 if quick else 3)))
