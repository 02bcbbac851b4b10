"""What the manager keeps of workers that ended (real worker processes).

A parent that gives every job a worker of its own (a new id each time) kept every stopped
worker in ``manager.handles`` and ``stats().workers``, about 250 KiB each, for the manager's
life; a stopped worker now leaves once stopped, as a pool's retired workers do, its counters
staying in the totals. Those totals never go down: spawning a stopped or failed worker's id
again used to drop its counters. And a stopped pool's name can be used again."""

from __future__ import annotations

import pytest

from aspect_ipc import ProcessManager, RestartPolicy, WorkerIdInUse, WorkerState
from workers import namespace, python_worker

pytestmark = pytest.mark.anyio


async def test_stopped_workers_leave_the_manager_and_their_counters_stay() -> None:
    async with ProcessManager(namespace=namespace()) as manager:
        handles = []
        for job in range(3):
            handle = await manager.spawn(f"job-{job}", **python_worker())
            await handle.request("echo", [job])
            await handle.stop()
            handles.append(handle)
        assert manager.handles == {}
        assert manager.stats().workers == {}
        assert manager.stats().requests_sent == 6  # each: an echo, and the stop's $/shutdown
        # The handles themselves still say how each ended.
        assert [h.state for h in handles] == [WorkerState.STOPPED] * 3
        assert [h.exit_code for h in handles] == [0, 0, 0]
        with pytest.raises(KeyError):
            manager.get("job-0")


async def test_a_failed_worker_stays_until_its_id_is_used_again_and_totals_never_go_down() -> None:
    policy = RestartPolicy(enabled=False)
    async with ProcessManager(namespace=namespace(), restart_policy=policy) as manager:
        handle = await manager.spawn("w", **python_worker())
        await handle.request("echo", [1])
        with pytest.raises(Exception):  # noqa: B017 - WorkerCrashed: the crash is not the point
            await handle.request("crash", {"code": 3})
        await handle.wait()
        assert manager.get("w").state is WorkerState.FAILED  # kept, for its verdict
        before = manager.stats().requests_sent
        again = await manager.spawn("w", **python_worker())  # the id, used again
        assert manager.stats().requests_sent == before  # was 0: the counts were dropped
        await again.request("echo", [2])
        assert manager.stats().requests_sent == before + 1


async def test_a_stopped_pools_name_can_be_used_again() -> None:
    async with ProcessManager(namespace=namespace()) as manager:
        pool = await manager.spawn_pool("p", 2, **python_worker())
        with pytest.raises(WorkerIdInUse, match="a pool named 'p' already exists"):
            await manager.spawn_pool("p", 1, **python_worker())
        await pool.stop()
        again = await manager.spawn_pool("p", 1, **python_worker())
        assert await again.request("echo", [1]) == [1]
