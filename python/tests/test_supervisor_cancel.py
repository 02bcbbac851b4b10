"""A cancelled spawn() leaves nothing behind: no process, zombie, socket file or descriptor.

``ASPECT_IPC_SOAK_CYCLES`` multiplies the cancelled spawns (``make soak``).
"""

from __future__ import annotations

import os
import random

import anyio
import pytest

from aspect_ipc import DataChannelOptions, ProcessManager
from supervisor_kit import children, open_fds, socket_files
from workers import namespace, python_worker

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
