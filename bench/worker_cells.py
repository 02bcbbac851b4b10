"""aspect-ipc itself: a ProcessManager in this process, echoing through a test worker.

Every aspect-ipc cell of the benchmark, for one worker language at a time:

- **throughput**: ``handle.request_via_data("echo", [payload])`` with ``bytes`` payloads (they
  travel as MessagePack bin), one call at a time and ``IN_FLIGHT`` at a time (that many tasks in
  a task group, each calling in a loop);
- **latency**: each of a run of sequential small requests (``echo`` of ``{"n": 1}``) timed, on the
  control channel (JSON lines over stdio) and on the data channel;
- **small requests per second**: the same small request, ``MANY_IN_FLIGHT`` tasks at a time, on the
  data channel;
- **seed payloads**: each of a run of sequential ``processItems(1000)`` and
  ``processMatrix(100x100)`` requests timed, as JSON on the control channel and as MessagePack on
  the data channel (seed.py);
- **spawn to ready**: ``manager.spawn(...)`` with the data channel enabled, from the call until it
  returns (process started, ``$/ready`` received, socket connected, ``$/hello`` answered).

The test workers are described in integration-tests/WORKERS.md; their ``echo`` returns its params.
The first echo of each size and the first answer to each seed payload on each channel are checked.
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from aspect_ipc import DataChannelOptions, ProcessHandle, ProcessManager
from measure import IN_FLIGHT, MANY_IN_FLIGHT, Budget, Latency, Throughput, payload
from seed import CHANNELS, SeedPayload

__all__ = ["WORKER_NAMES", "WorkerCommand", "WorkerResult", "find_worker", "measure"]

WORKER_NAMES = ("python", "node", "go")

SMALL_PARAMS = {"n": 1}
"""The params of a small request (the whole JSON-RPC request is about 40-50 bytes)."""

Call = Callable[[], Awaitable[Any]]


@dataclass(frozen=True)
class WorkerCommand:
    """How to start one language's test worker."""

    name: str
    executable: str
    args: tuple[str, ...]


def find_worker(name: str, root: Path) -> WorkerCommand | str:
    """The command of worker ``name``, or why it cannot run (a note to print)."""
    if name == "python":
        script = root / "integration-tests/workers/python/worker.py"
        return WorkerCommand(name, sys.executable, (str(script),))
    if name == "node":
        script = root / "integration-tests/workers/node/build/worker.js"
        node = shutil.which("node")
        if node is None:
            return "node is not on PATH"
        if not script.is_file():
            return f"{script.relative_to(root)} is not built (make build-node)"
        return WorkerCommand(name, node, (str(script),))
    if name == "go":
        binary = root / ".build/go/test-worker"
        if not os.access(binary, os.X_OK):
            return f"{binary.relative_to(root)} is not built (make build-go)"
        return WorkerCommand(name, str(binary), ())
    return f"unknown worker {name!r} (known: {', '.join(WORKER_NAMES)})"


class WorkerResult:
    """One worker's figures."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.spawn_seconds: list[float] = []
        self.throughput: dict[tuple[int, int], Throughput] = {}
        self.latency: dict[str, Latency] = {}
        self.small_rps: Throughput | None = None
        self.seed: dict[tuple[str, str], Latency] = {}
        """Round trips of the seed payloads, by (payload key, channel)."""

    @property
    def spawn_median(self) -> float:
        return statistics.median(self.spawn_seconds)

    def as_dict(self) -> dict[str, Any]:
        return {
            "spawn_to_ready_s": {
                "median": round(self.spawn_median, 6),
                "samples": [round(s, 6) for s in self.spawn_seconds],
            },
            "throughput": [cell.as_dict() for cell in self.throughput.values()],
            "latency": {channel: lat.as_dict() for channel, lat in self.latency.items()},
            "small_rps": _small_rps_dict(self.small_rps),
            "seed_round_trip": {
                key: {
                    channel: self.seed[key, channel].as_dict()
                    for channel in CHANNELS
                    if (key, channel) in self.seed
                }
                for key in dict.fromkeys(key for key, _ in self.seed)
            },
        }


async def measure(
    command: WorkerCommand,
    sizes: tuple[int, ...],
    seeds: tuple[SeedPayload, ...],
    budget: Budget,
    progress: Callable[[str], None],
) -> WorkerResult:
    """Run every cell of one worker language; workers are stopped before this returns."""
    result = WorkerResult(command.name)
    namespace = f"bench{os.getpid()}"
    async with ProcessManager(namespace=namespace, request_timeout=600) as manager:
        progress(f"{command.name}: spawn to ready")
        for attempt in range(budget.spawns):
            start = time.perf_counter()
            handle = await _spawn(manager, command, f"{command.name}-spawn{attempt}")
            result.spawn_seconds.append(time.perf_counter() - start)
            await handle.stop()
        handle = await _spawn(manager, command, command.name)

        for size in sizes:
            params = [payload(size)]
            if await handle.request_via_data("echo", params) != params:
                raise RuntimeError(f"{command.name} worker: echo of {size} bytes came back altered")
            call = _data_echo(handle, params)
            for in_flight in (1, IN_FLIGHT):
                progress(f"{command.name}: data echo {size} B x{in_flight}")
                await run_echo(call, in_flight, budget.warmup())
                ops, seconds = await run_echo(call, in_flight, budget)
                result.throughput[size, in_flight] = Throughput(size, in_flight, ops, seconds)

        small_control = _control_echo(handle, SMALL_PARAMS)
        small_data = _data_echo(handle, SMALL_PARAMS)
        for channel, call in (("control", small_control), ("data", small_data)):
            progress(f"{command.name}: {channel} latency")
            await run_latency(call, budget.warmup())
            result.latency[channel] = await run_latency(call, budget)

        progress(f"{command.name}: small data requests x{MANY_IN_FLIGHT}")
        await run_echo(small_data, MANY_IN_FLIGHT, budget.warmup())
        ops, seconds = await run_echo(small_data, MANY_IN_FLIGHT, budget)
        result.small_rps = Throughput(0, MANY_IN_FLIGHT, ops, seconds)

        for seed in seeds:
            for channel in CHANNELS:
                progress(f"{command.name}: {seed.label} on {channel}")
                call = _seed_call(handle, seed, channel)
                answer = await call()
                if answer != seed.expected:
                    raise RuntimeError(
                        f"{command.name} worker: {seed.label} on {channel} answered {answer!r}, "
                        f"expected {seed.expected!r}"
                    )
                await run_latency(call, budget.warmup())
                result.seed[seed.key, channel] = await run_latency(call, budget)
    return result


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


async def _spawn(manager: ProcessManager, command: WorkerCommand, worker_id: str) -> ProcessHandle:
    return await manager.spawn(
        worker_id,
        executable=command.executable,
        args=command.args,
        data_channel=DataChannelOptions(enabled=True),
    )


def _small_rps_dict(cell: Throughput | None) -> dict[str, Any] | None:
    if cell is None:
        return None
    entry = {"request": f"echo {SMALL_PARAMS}", **cell.as_dict()}
    del entry["size"], entry["mb_per_s"]
    return entry


def _data_echo(handle: ProcessHandle, params: Any) -> Call:
    async def call() -> Any:
        return await handle.request_via_data("echo", params)

    return call


def _control_echo(handle: ProcessHandle, params: Any) -> Call:
    async def call() -> Any:
        return await handle.request("echo", params)

    return call


def _seed_call(handle: ProcessHandle, seed: SeedPayload, channel: str) -> Call:
    request = handle.request_via_data if channel == "data" else handle.request

    async def call() -> Any:
        return await request(seed.method, seed.params)

    return call
