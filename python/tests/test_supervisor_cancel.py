"""A cancelled spawn() leaves nothing behind: no process, zombie, socket file or descriptor.

``ASPECT_IPC_SOAK_CYCLES`` multiplies the cancelled spawns (``make soak``).
"""

from __future__ import annotations

import ast
import os
import random
import textwrap

import anyio
import pytest

from aspect_ipc import DataChannelOptions, ProcessManager
from supervisor_kit import children, open_fds, socket_files
from workers import namespace, python_worker, run_parent

pytestmark = pytest.mark.anyio
DATA = DataChannelOptions(enabled=True)
CYCLES = max(8, int(os.environ.get("ASPECT_IPC_SOAK_CYCLES", "8")) // 10)


async def _settled_fds(before: dict[int, str]) -> dict[int, str]:
    # Descriptors are closed synchronously; this only lets a finished thread hand back.
    with anyio.move_on_after(2):
        while len(open_fds()) > len(before):
            await anyio.sleep(0.02)
    return open_fds()


async def test_cancelled_spawns_leave_nothing_behind() -> None:
    ns = namespace()
    rng = random.Random()
    async with ProcessManager(namespace=ns) as manager:  # warm-up: threads, imports
        await manager.spawn("warm", **python_worker(), data_channel=DATA)
    before = open_fds()
    cancelled = 0
    for n in range(CYCLES):
        # From "at once" to "about when the worker is ready": every stage of the start-up.
        delay = rng.choice([0.0, rng.uniform(0.0, 0.05), rng.uniform(0.05, 0.8)])
        async with ProcessManager(namespace=ns) as manager:
            with anyio.move_on_after(delay) as scope:
                await manager.spawn(f"w{n}", **python_worker(), data_channel=DATA)
            cancelled += scope.cancelled_caught
    after = await _settled_fds(before)
    assert children() == (set(), set()), "processes or zombies left"
    assert socket_files(ns) == [], "socket files left"
    leaked = {fd: target for fd, target in after.items() if before.get(fd) != target}
    assert leaked == {}, f"descriptors left: {leaked}"
    assert cancelled > 0


HOST_RETURNS = textwrap.dedent(
    """
    import asyncio, os, sys
    from aspect_ipc import DataChannelOptions, ProcessManager

    events = []

    async def holder(ready):
        async with ProcessManager(namespace=sys.argv[2]) as manager:
            manager.on(
                "*", lambda e: e.kind != "output" and events.append((str(e.kind), e.exit_code))
            )
            handle = await manager.spawn(
                "w", executable=sys.executable, args=[sys.argv[1]],
                data_channel=DataChannelOptions(enabled=True),
            )
            ready.set_result(handle.pid)
            await asyncio.Event().wait()

    async def main():
        ready = asyncio.get_running_loop().create_future()
        asyncio.create_task(holder(ready))  # never stopped: asyncio.run cancels it at the end
        return await ready

    pid = asyncio.run(main())
    print(events, flush=True)
    try:
        os.kill(pid, 0)
        print("worker alive", flush=True)
    except ProcessLookupError:
        print("worker gone", flush=True)
    """
)


def test_a_host_whose_event_loop_cancels_every_task_at_its_end_stops_workers_cleanly() -> None:
    # asyncio.run cancels every task left, the manager's own supervisors included, at once: a
    # native cancellation that anyio's task groups took for their own, so the supervisor met an
    # internal AssertionError ("unhandled exception during asyncio.run() shutdown"), and the
    # worker got SIGKILL at once and no exit event. Now it gets SIGTERM (and exits 0), and the
    # events are exit then stop.
    done = run_parent(HOST_RETURNS)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr and "unhandled exception" not in done.stderr, done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1] == "worker gone"
    seen = ast.literal_eval(lines[0])
    assert [kind for kind, _ in seen][-2:] == ["exit", "stop"], lines[0]
    assert ("exit", 0) in seen  # SIGTERM first: the worker exited cleanly
