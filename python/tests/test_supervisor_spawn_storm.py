"""Starting many workers at once does not hold up the workers already running.

``ASPECT_IPC_LOAD_SCALE=full`` (``make soak``) starts 100 workers; the default, 32.
"""

from __future__ import annotations

import functools
import os
import time

import anyio
import pytest

from aspect_ipc import DataChannelOptions, ProcessManager, StartupError
from supervisor_kit import children
from workers import namespace, python_worker

pytestmark = pytest.mark.anyio
WORKERS = 100 if os.environ.get("ASPECT_IPC_LOAD_SCALE") == "full" else 32
ANSWER_BOUND = 0.5
DATA = DataChannelOptions(enabled=True)


async def test_a_running_worker_answers_while_many_start() -> None:
    async with ProcessManager(namespace=namespace(), startup_timeout=300) as manager:
        healthy = await manager.spawn("healthy", **python_worker(), data_channel=DATA)
        latencies: list[float] = []
        started = time.monotonic()
        async with anyio.create_task_group() as probes:

            async def probe() -> None:
                while True:
                    sent = time.monotonic()
                    assert await healthy.request_via_data("echo", [sent]) == [sent]
                    latencies.append(time.monotonic() - sent)
                    await anyio.sleep(0.05)

            probes.start_soon(probe)
            async with anyio.create_task_group() as spawns:
                for n in range(WORKERS):
                    spawn = functools.partial(manager.spawn, f"w{n}", **python_worker())
                    spawns.start_soon(spawn)
            probes.cancel_scope.cancel()
        elapsed = time.monotonic() - started
        assert all(h.state.value == "running" for h in manager.handles.values())
    print(
        f"\n{WORKERS} workers started in {elapsed:.1f} s; {len(latencies)} requests to a "
        f"running worker meanwhile, the slowest answered in {max(latencies) * 1000:.0f} ms"
    )
    assert children() == (set(), set())
    assert len(latencies) >= 5
    assert max(latencies) < ANSWER_BOUND


async def test_a_worker_slow_to_start_does_not_hold_up_the_others() -> None:
    # One start-up slot, taken by a worker that never sends $/ready: it gives the slot back
    # after 2 s, not at its start-up timeout, so the next worker starts meanwhile.
    async with ProcessManager(
        namespace=namespace(), startup_timeout=60, max_concurrent_starts=1
    ) as manager:
        spawned = anyio.Event()
        manager.on("spawn", lambda _: spawned.set())
        async with anyio.create_task_group() as task_group:

            async def slow() -> None:
                with pytest.raises(StartupError, match="stopped during its start-up"):
                    await manager.spawn("slow", **python_worker(), env={"TEST_NO_READY": "1"})

            task_group.start_soon(slow)
            await spawned.wait()  # the slow worker holds the only slot
            with anyio.fail_after(30):  # not the slow one's start-up timeout (60 s)
                handle = await manager.spawn("quick", **python_worker())
            assert await handle.request("add", {"a": 1, "b": 2}) == 3
            assert manager.get("slow").state.value == "starting"
            await manager.stop("slow")
