"""aspect-ipc's cells: a ProcessManager in the driver process, talking to one test worker.

- **echo**: ``handle.request_via_data("echo", [payload])`` with a ``bytes`` payload (MessagePack
  bin), one call at a time, or ``in_flight`` tasks each calling in a loop;
- **latency**: a small request (``echo`` of ``{"n": 1}``) timed one by one, on the data channel
  (the headline) and on the control channel (``control_p50``...); with the parent on asyncio,
  then the floor (``floor_p50``...): the same request from a bare asyncio client to a second
  worker of the same language, started and authenticated by hand (floor.py), what any asyncio
  parent pays;
- **rps**: the same small request on the data channel from ``in_flight`` tasks;
- **seed**: processItems(1000) / processMatrix(100x100) timed one by one, MessagePack on the data
  channel (the headline) and JSON on the control channel (``control_p50``...);
- **spawn**: ``manager.spawn(...)`` with the data channel, from the call until it returns;
- **memory**: a loop of 16 MiB echoes, one in flight: the parent's (this process's) RSS;
- **stream**: a stream beside one request per item (stream_cells.py).

The test workers are described in integration-tests/WORKERS.md; their ``echo`` returns its params.
Every cell checks an answer after its timed part; a wrong answer stops the run.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from aspect_ipc import DataChannelOptions, ProcessHandle, ProcessManager
from cells import MEMORY_SIZE, Cell
from contenders import Contender
from floor import BareWorker, asyncio_round
from measure import Budget, Latency, Throughput, payload
from seed import seed_payloads
from stream_cells import measure_stream

__all__ = ["SMALL_PARAMS", "AspectDriver", "run_echo", "run_latency"]

SMALL_PARAMS = {"n": 1}
"""The params of a small request (the whole JSON-RPC request is about 40-50 bytes)."""

Call = Callable[[], Awaitable[Any]]


class AspectDriver:
    """Measures the cells of one worker language; its worker lives as long as ``manager``."""

    def __init__(self, contender: Contender, manager: ProcessManager) -> None:
        self._contender = contender
        self._manager = manager
        self._handle: ProcessHandle | None = None
        self._spawned = 0
        self._seeds = {seed.key: seed for seed in seed_payloads()}

    async def measure(self, cell: Cell, budget: Budget) -> dict[str, Any]:
        """One cell's figures (see cells.py), measured now."""
        kind = cell["kind"]
        if kind == "spawn":
            start = time.perf_counter()
            handle = await self._spawn()
            seconds = time.perf_counter() - start
            await handle.stop()
            return {"seconds": seconds}
        if self._handle is None:
            self._handle = await self._spawn()
        handle = self._handle
        if kind == "echo":
            params = [payload(cell["size"])]
            call = _call(handle.request_via_data, "echo", params)
            await run_echo(call, cell["in_flight"], budget.warmup())
            ops, seconds = await run_echo(call, cell["in_flight"], budget)
            await self._check(call, params, f"echo of {cell['size']} bytes")
            return Throughput(cell["size"], cell["in_flight"], ops, seconds).figures()
        if kind == "rps":
            call = _call(handle.request_via_data, "echo", SMALL_PARAMS)
            await run_echo(call, cell["in_flight"], budget.warmup())
            ops, seconds = await run_echo(call, cell["in_flight"], budget)
            await self._check(call, SMALL_PARAMS, "small request")
            return Throughput(0, cell["in_flight"], ops, seconds).figures()
        if kind in ("latency", "seed"):
            if kind == "latency":
                method, params, expected = "echo", SMALL_PARAMS, SMALL_PARAMS
            else:
                seed = self._seeds[cell["seed"]]
                method, params, expected = seed.method, seed.params, seed.expected
            figures: dict[str, Any] = {}
            for prefix, request in (("", handle.request_via_data), ("control_", handle.request)):
                call = _call(request, method, params)
                await run_latency(call, budget.warmup())
                figures |= (await run_latency(call, budget)).figures(prefix)
                await self._check(call, expected, f"{method} on {prefix or 'data_'}channel")
            if (
                kind == "latency"
                and self._contender.backend == "asyncio"
                and not self._contender.busy_poll
                and not self._contender.receive_wait
            ):
                figures |= (await _floor_latency(self._contender, budget)).figures("floor_")
            return figures
        if kind == "memory":
            return await _memory_loop(handle, cell["echoes"])
        if kind == "stream":
            return await measure_stream(handle, cell, budget)
        raise ValueError(f"aspect-ipc cannot measure a {kind!r} cell")

    async def _spawn(self) -> ProcessHandle:
        self._spawned += 1
        contender = self._contender
        return await self._manager.spawn(
            f"{contender.key}-{self._spawned}",
            executable=contender.executable,
            args=contender.args,
            data_channel=DataChannelOptions(
                enabled=True, busy_poll=contender.busy_poll, receive_wait=contender.receive_wait
            ),
            startup_timeout=60,  # a loaded machine: the spawn cell measures, it does not judge
        )

    async def _check(self, call: Call, expected: Any, what: str) -> None:
        answer = await call()
        if answer != expected:
            raise RuntimeError(
                f"{self._contender.name}: the answer to the {what} is wrong: {answer!r:.200}"
            )


async def run_echo(call: Call, in_flight: int, budget: Budget) -> tuple[int, float]:
    """Call until the budget is spent, from ``in_flight`` tasks; return (calls, seconds).

    Each task stops after the call during which the budget ran out, so the calls still in
    flight at the deadline are waited for and counted.
    """
    if budget.is_empty:
        return 0, 0.0
    ops = 0
    clock = time.perf_counter
    start = clock()
    deadline = start + budget.seconds

    async def lane() -> None:
        nonlocal ops
        while True:
            await call()
            ops += 1
            if ops >= budget.min_ops and clock() >= deadline:
                return

    if in_flight == 1:
        await lane()
    else:
        async with anyio.create_task_group() as task_group:
            for _ in range(in_flight):
                task_group.start_soon(lane)
    return ops, clock() - start


async def run_latency(call: Call, budget: Budget) -> Latency:
    """Time each of a run of sequential calls."""
    samples: list[float] = []
    clock = time.perf_counter
    deadline = clock() + budget.seconds
    while not budget.is_empty:
        start = clock()
        await call()
        end = clock()
        samples.append(end - start)
        if len(samples) >= budget.min_samples and end >= deadline:
            break
    return Latency(tuple(samples))


async def _floor_latency(contender: Contender, budget: Budget) -> Latency:
    """The small request's round trips from a bare asyncio client (floor.py) to a worker of
    ``contender``'s language: the warm-up, then rounds of 200 until the budget is spent."""
    samples: list[float] = []
    with tempfile.TemporaryDirectory(prefix="floor-") as directory:
        worker = BareWorker(directory, [contender.executable, *contender.args])
        try:
            if budget.warm_up:
                await asyncio_round(worker, 200)
            deadline = time.perf_counter() + budget.seconds
            while len(samples) < budget.min_samples or time.perf_counter() < deadline:
                samples += await asyncio_round(worker, 200)
        finally:
            worker.close()
    return Latency(tuple(samples))


async def _memory_loop(handle: ProcessHandle, echoes: int) -> dict[str, Any]:
    """``echoes`` 16 MiB echoes, one in flight, as a plain loop in a user's program would do
    them, and this process's RSS: before (the payload built), after a tenth of the echoes (at
    least 2: the first ones leave an answer's worth of heap behind), at the end, and its peak (the
    kernel's high-water mark, reset first when the kernel allows it, else the highest RSS read
    after an echo).

    ``late_growth`` says whether the loop is flat: the highest RSS read in the second half of the
    echoes after the first tenth, minus the highest in the first half. A leak raises it; the
    allocator giving memory back and taking it again between echoes does not (the end minus the
    tenth would swing by a payload or two either way). None with too few echoes to tell.
    """
    params = [payload(MEMORY_SIZE)]
    before = _rss()
    reset = _reset_peak()
    settled = max(2, echoes // 10)
    half = settled + (echoes - settled) // 2
    highest, tenth = before, None
    first_half, second_half = 0, 0
    start = time.perf_counter()
    for done in range(1, echoes + 1):
        answer = await handle.request_via_data("echo", params)
        if done == 1 and answer != params:
            raise RuntimeError("the 16 MiB echo of the memory loop came back altered")
        rss = _rss()
        highest = max(highest, rss)
        if done == settled:
            tenth = rss
        elif settled < done <= half:
            first_half = max(first_half, rss)
        elif done > half:
            second_half = max(second_half, rss)
    seconds = time.perf_counter() - start
    peak = _peak() if reset else highest
    return {
        "echoes": echoes,
        "seconds": seconds,
        "rss_before": before,
        "rss_tenth": tenth,
        "rss_end": _rss(),
        "peak": peak,
        "peak_source": "VmHWM" if reset else "sampled after each echo",
        "peak_growth": peak - before,
        "late_growth": second_half - first_half if first_half and second_half else None,
    }


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _reset_peak() -> bool:
    try:  # Linux: "5" resets the peak RSS (VmHWM) to the current RSS
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def _peak() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _call(request: Callable[[str, Any], Awaitable[Any]], method: str, params: Any) -> Call:
    async def call() -> Any:
        return await request(method, params)

    return call
