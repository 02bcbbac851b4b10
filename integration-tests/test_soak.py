"""Leaks: spawn/request/stop cycles across Python, Node and Go workers end with the same
descriptors, threads, tasks, child processes and socket files as they started with.

``ASPECT_IPC_SOAK_CYCLES`` sets the number of cycles (``make soak``: 1000).
"""

from __future__ import annotations

import gc
import os

import pytest
from _load_kit import (
    DATA,
    LANGUAGES,
    census,
    figures,
    loop_exceptions,
    mib,
    require_built_workers,
    settled_census,
    settled_rss,
    soak_cycles,
)
from aspect_ipc import ProcessHandle, ProcessManager, WorkerState
from conftest import WORKERS

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def _cycle(manager: ProcessManager, language: str, n: int) -> ProcessHandle:
    command = WORKERS[language]
    # One id per language: a stopped worker's handle stays in the manager until its id is
    # reused, so fresh ids would be growth by design, not a leak.
    handle = await manager.spawn(
        f"soak-{language}", executable=command[0], args=command[1:], data_channel=DATA
    )
    marker = f"{language}/{n}"
    assert await handle.request("echo", {"marker": marker}) == {"marker": marker}
    assert await handle.request_via_data("echo", [marker.encode()]) == [marker.encode()]
    await handle.stop()
    assert handle.state is WorkerState.STOPPED and handle.exit_code == 0
    assert not os.path.exists(str(handle.spec.data_path))
    return handle


async def test_spawn_request_stop_cycles_leak_nothing(
    namespace: str, anyio_backend: str
) -> None:
    require_built_workers()
    cycles = soak_cycles()
    with loop_exceptions() as escaped:
        async with ProcessManager(namespace=namespace) as manager:
            for n, language in enumerate(LANGUAGES):  # warm-up: imports, caches, pools
                await _cycle(manager, language, -1 - n)
            start = census(namespace)
            rss_before = settled_rss(os.getpid())
            objects_before = len(gc.get_objects())
            for n in range(cycles):
                await _cycle(manager, LANGUAGES[n % len(LANGUAGES)], n)
            end = await settled_census(namespace, start)
            rss_after = settled_rss(os.getpid())
            objects_after = len(gc.get_objects())
    figures(
        f"soak ({anyio_backend})",
        cycles=cycles,
        languages="/".join(LANGUAGES),
        **{f"{key}_before_after": f"{start[key]}/{end[key]}" for key in start},
        parent_rss_before_after=f"{mib(rss_before)}/{mib(rss_after)}",
        gc_objects_before_after=f"{objects_before}/{objects_after}",
        loop_exceptions=len(escaped),
    )
    assert end == start
    assert start["children"] == start["zombies"] == start["socket_files"] == 0
    # Nothing is kept per cycle: one leaked object per cycle would show over many cycles.
    assert objects_after - objects_before <= 200 + cycles // 10
    assert escaped == [], f"errors escaped to the event loop: {escaped[:5]}"
