"""``handle.restart()``: a graceful replacement of a running worker by a new incarnation.

Real worker processes: the old one gets ``$/shutdown`` and exits, the new one starts at once.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from aspect_ipc import (
    ChannelClosed,
    HealthCheck,
    ProcessEvent,
    ProcessManager,
    RemoteError,
    WorkerState,
    WorkerUnavailable,
)
from supervisor_kit import children
from workers import namespace, pid_alive, python_worker

pytestmark = pytest.mark.anyio


async def test_restart_replaces_the_worker() -> None:
    async with ProcessManager(namespace=namespace(), shutdown_grace=2.0) as manager:
        events: list[ProcessEvent] = []
        manager.on("*", lambda e: events.append(e) if e.kind != "output" else None)
        handle = await manager.spawn("w", **python_worker(), health=HealthCheck(interval=0.2))
        old_pid = handle.pid
        assert old_pid is not None
        del events[:]
        with anyio.fail_after(10):
            await handle.restart()
        assert handle.state is WorkerState.RUNNING
        assert handle.pid != old_pid and not pid_alive(old_pid)
        assert (await handle.request("info"))["pid"] == handle.pid
        assert [e.kind for e in events] == ["exit", "restart", "spawn", "ready"]
        assert events[0].exit_code == 0  # it obeyed $/shutdown: not a crash
        assert events[1].info == {"requested": True} and events[1].delay == 0.0
        assert handle.restarts == 0
    assert children() == (set(), set())


async def test_requests_in_flight_and_during_a_restart() -> None:
    # In flight: one finishes within the grace period, one is cancelled (-32002) by $/shutdown.
    # Made during the restart: waits for the new incarnation and is answered by it.
    async with ProcessManager(namespace=namespace(), shutdown_grace=1.5) as manager:
        handle = await manager.spawn("w", **python_worker())
        old_pid = handle.pid
        results: dict[str, Any] = {}

        async def call(name: str, method: str, params: Any = None) -> None:
            try:
                results[name] = await handle.request(method, params, timeout=20)
            except RemoteError as exc:
                results[name] = exc

        with anyio.fail_after(15):
            async with anyio.create_task_group() as task_group:
                task_group.start_soon(call, "short", "sleep", {"seconds": 0.3})
                task_group.start_soon(call, "long", "sleep", {"seconds": 60})
                await anyio.sleep(0.2)  # both are running in the worker
                task_group.start_soon(handle.restart)
                await anyio.sleep(0.05)
                assert handle.state is WorkerState.RESTARTING
                task_group.start_soon(call, "during", "info")
        assert results["short"] == "done"
        assert isinstance(results["long"], RemoteError) and results["long"].code == -32002
        assert results["during"]["pid"] == handle.pid != old_pid
    assert children() == (set(), set())


async def test_restart_needs_a_running_worker() -> None:
    async with ProcessManager(namespace=namespace()) as manager:
        handle = await manager.spawn("w", **python_worker())
        await handle.stop()
        with pytest.raises(WorkerUnavailable, match="worker w cannot be restarted: it is stopped"):
            await handle.restart()
        assert handle.state is WorkerState.STOPPED


async def test_a_stop_during_a_restart_wins() -> None:
    # A request in flight keeps the old worker draining ($/shutdown) when stop() comes.
    async with ProcessManager(namespace=namespace(), shutdown_grace=2.0) as manager:
        handle = await manager.spawn("w", **python_worker())
        spawns: list[ProcessEvent] = []
        manager.on("spawn", spawns.append)
        failures: list[BaseException] = []

        async def restart() -> None:
            try:
                await handle.restart()
            except WorkerUnavailable as exc:
                failures.append(exc)

        async def busy() -> None:
            with pytest.raises((RemoteError, WorkerUnavailable, ChannelClosed)):
                await handle.request("sleep", {"seconds": 60}, timeout=20)

        with anyio.fail_after(10):
            async with anyio.create_task_group() as task_group:
                task_group.start_soon(busy)
                await anyio.sleep(0.2)
                task_group.start_soon(restart)
                await anyio.sleep(0.2)
                assert spawns == []  # still draining
                await handle.stop()
        assert handle.state is WorkerState.STOPPED
        assert len(failures) == 1 and "restart() did not complete" in str(failures[0])
        await anyio.sleep(0.3)
        assert spawns == [] and handle.state is WorkerState.STOPPED
    assert children() == (set(), set())
