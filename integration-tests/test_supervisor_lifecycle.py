"""The supervisor with Python, Node and Go workers: a stop is final at every moment of the life
cycle and bounded by its grace period; a cancelled spawn leaves nothing behind (the conftest's
hygiene check: no process, socket file or descriptor); a worker's stderr flood stays cheap.

``ASPECT_IPC_SOAK_CYCLES`` (``make soak``) multiplies the cancelled spawns and the stop moments.
"""

from __future__ import annotations

import os
import random
import signal
from typing import Any

import anyio
import pytest
from _load_kit import soak_cycles
from _procfs import child_processes
from aspect_ipc import (
    DataChannelOptions,
    ProcessEvent,
    ProcessManager,
    RestartPolicy,
    StartupError,
    WorkerState,
    WorkerUnavailable,
)

pytestmark = pytest.mark.anyio
DATA = DataChannelOptions(enabled=True)
GRACE = 1.0
KILL_TIME = 2.0  # a generous bound for SIGKILL, exit and reap on a loaded machine
SOAKING = soak_cycles() > 100


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _moments() -> list[float]:
    # Soaking: every 50 ms through the backoff, the start-up and the new worker's first moments.
    if SOAKING:
        return [n * 0.05 for n in range(16)]
    return [0.0, 0.3]


@pytest.mark.parametrize("moment", _moments())
async def test_a_stop_during_a_restart_is_final(
    worker: dict[str, Any], namespace: str, moment: float
) -> None:
    policy = RestartPolicy(enabled=True, max_restarts=5, backoff=0.3)
    async with ProcessManager(namespace=namespace, restart_policy=policy) as manager:
        crashed = anyio.Event()
        kinds: list[str] = []
        manager.on("crash", lambda _: crashed.set())
        manager.on("ready", lambda e: kinds.append(e.kind))
        handle = await manager.spawn("w", **worker, data_channel=DATA)
        assert handle.pid is not None
        os.kill(handle.pid, signal.SIGKILL)
        with anyio.fail_after(10):
            await crashed.wait()
        await anyio.sleep(moment)
        readies = len(kinds)
        with anyio.fail_after(GRACE + KILL_TIME):
            await handle.stop(grace=GRACE)
        await anyio.sleep(0.6)  # longer than the backoff: a lost stop restarts by now
        assert handle.state is WorkerState.STOPPED and len(kinds) == readies
        with pytest.raises(WorkerUnavailable):
            await handle.request("info")


async def test_a_stop_during_the_first_start_up(
    worker: dict[str, Any], namespace: str
) -> None:
    env = {"TEST_NO_READY": "1", "TEST_IGNORE_SIGTERM": "1"}
    async with ProcessManager(namespace=namespace, startup_timeout=60) as manager:
        spawned = anyio.Event()
        manager.on("spawn", lambda _: spawned.set())
        async with anyio.create_task_group() as task_group:

            async def spawn() -> None:
                with pytest.raises(StartupError, match="stopped during its start-up"):
                    await manager.spawn("w", **worker, env=env, data_channel=DATA)

            task_group.start_soon(spawn)
            with anyio.fail_after(10):
                await spawned.wait()
            await anyio.sleep(0.3)
            handle = manager.get("w")
            with anyio.fail_after(GRACE + KILL_TIME):
                await handle.stop(grace=GRACE)
        assert handle.state is WorkerState.STOPPED
        assert "w" not in manager.handles  # a spawn that failed leaves no handle behind


async def test_cancelled_spawns_leave_nothing_behind(
    worker: dict[str, Any], namespace: str
) -> None:
    rng = random.Random()
    cycles = max(6, soak_cycles() // 10)
    outcomes = {"cancelled": 0, "ready": 0}
    for n in range(cycles):
        delay = rng.choice([0.0, rng.uniform(0.0, 0.05), rng.uniform(0.05, 0.6)])
        # A fast worker may be ready before any cancellation lands (a Go worker in ~5 ms): the
        # first cycle's worker never sends $/ready, so at least one spawn is cut short for sure.
        env = {"TEST_NO_READY": "1"} if n == 0 else {}
        if n == 0:
            delay = rng.uniform(0.05, 0.3)
        async with ProcessManager(namespace=namespace) as manager:
            with anyio.move_on_after(delay) as scope:
                await manager.spawn(f"w{n}", **worker, env=env, data_channel=DATA)
            outcomes["cancelled" if scope.cancelled_caught else "ready"] += 1
        assert child_processes(os.getpid()) == (set(), set()), f"left after cycle {n}"
    assert outcomes["cancelled"] > 0


async def test_stderr_output_reaches_the_parent_in_bounded_lines(
    worker: dict[str, Any], namespace: str
) -> None:
    lines: list[ProcessEvent] = []
    async with ProcessManager(namespace=namespace) as manager:
        manager.on("output", lines.append)
        handle = await manager.spawn("w", **worker)
        text = "y" * (40 * 1024)  # one line of 40 KiB: forwarded as three pieces
        await handle.request("stderr", {"text": text})
        await handle.request("stderr", {"text": "after"})
        with anyio.fail_after(5):
            while not any(e.line == "after" for e in lines):
                await anyio.sleep(0.01)
    pieces = [e for e in lines if e.line and e.line.startswith("y")]
    assert [e.info.get("continues", False) for e in pieces] == [True, True, False]
    assert (
        "".join(e.line for e in pieces if e.line) == text
    )  # the worker's text, joined
