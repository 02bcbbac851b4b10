"""Worker pools and map over Python, Node and Go workers (real processes and sockets)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from aspect_ipc import (
    DataChannelOptions,
    ProcessManager,
    RemoteError,
    RestartPolicy,
    WorkerCrashed,
    WorkerState,
)

pytestmark = pytest.mark.anyio
DATA = DataChannelOptions(enabled=True)
RESTART = RestartPolicy(enabled=True, backoff=0.05, max_restarts=10)


def adds(n: int) -> Iterator[dict[str, int]]:
    return ({"a": i, "b": 1000} for i in range(n))


async def _wait_for(predicate: Any) -> None:
    with anyio.fail_after(10):  # a hang guard, not a timing assertion
        while not predicate():
            await anyio.sleep(0.01)


async def test_map_ordered_and_unordered_on_both_channels(
    worker: dict[str, Any], namespace: str
) -> None:
    async with ProcessManager(namespace=namespace) as manager:
        pool = await manager.spawn_pool("p", 2, **worker, data_channel=DATA)
        assert [h.id for h in pool.handles] == ["p-0", "p-1"]
        expected = [i + 1000 for i in range(300)]
        assert [r async for r in pool.map("add", adds(300))] == expected
        assert [r async for r in pool.map("add", adds(300), via="control")] == expected
        unordered = [r async for r in pool.map("add", adds(300), ordered=False)]
        assert sorted(unordered) == expected
        # Spins spread over both workers (least loaded first).
        spins = ({"microseconds": 20_000} for _ in range(8))
        pids = {r["pid"] async for r in pool.map("spin", spins, ordered=False)}
        assert pids == {h.pid for h in pool.handles}


async def test_map_reads_its_input_lazily(
    worker: dict[str, Any], namespace: str
) -> None:
    read = 0

    def endless() -> Iterator[dict[str, int]]:
        nonlocal read
        for i in itertools.count():
            read += 1
            yield {"a": i, "b": 0}

    async with ProcessManager(namespace=namespace) as manager:
        pool = await manager.spawn_pool("p", 2, **worker, data_channel=DATA)
        async with pool.map("add", endless(), max_in_flight=7) as results:
            async for result in results:
                if result == 500:
                    break
        assert read <= 501 + 7  # never more than the window ahead of the consumer


async def test_breaking_out_cancels_what_is_in_flight(
    worker: dict[str, Any], namespace: str
) -> None:
    cancelled: list[Any] = []
    async with ProcessManager(namespace=namespace) as manager:
        pool = await manager.spawn_pool("p", 2, **worker, data_channel=DATA)
        for handle in pool.handles:
            handle.on_notification("cancelObserved", cancelled.append)
        tags = (
            {"seconds": 0.0 if i == 0 else 60.0, "tag": str(i)} for i in range(10**6)
        )
        async for result in pool.map("sleep", tags, max_in_flight=4):
            assert result == "done"
            break  # no 'async with': the dropped iterator cancels the rest
        await _wait_for(lambda: len(cancelled) >= 3)
        assert await pool.request("add", {"a": 1, "b": 1}) == 2


async def test_a_failed_item_raises_or_comes_in_its_place(
    worker: dict[str, Any], namespace: str
) -> None:
    items = [{"a": 1, "b": 1}, {"a": "x", "b": 1}, {"a": 2, "b": 2}]
    async with ProcessManager(namespace=namespace) as manager:
        pool = await manager.spawn_pool("p", 2, **worker, data_channel=DATA)
        with pytest.raises(RemoteError) as info:
            async for _ in pool.map("add", items):
                pass
        assert info.value.code == -32602
        out = [r async for r in pool.map("add", items, return_exceptions=True)]
        assert out[0] == 2 and isinstance(out[1], RemoteError) and out[2] == 4


async def _map_with_a_crash(pool: Any, **options: Any) -> list[Any]:
    """Spins through ``pool.map`` while one worker crashes (exit 3) mid-way."""
    results: list[Any] = []

    async def crash() -> None:
        with pytest.raises(WorkerCrashed):
            # One worker, directly: the pool would pick the least-loaded, maybe an idle one.
            await pool.handles[0].request_via_data("crash", {"code": 3})

    spins = ({"microseconds": 20_000} for _ in range(40))
    failure: WorkerCrashed | None = None
    async with anyio.create_task_group() as task_group:
        try:
            async with pool.map("spin", spins, max_in_flight=8, **options) as mapped:
                async for result in mapped:
                    results.append(result)
                    if len(results) == 5:
                        task_group.start_soon(crash)
        except WorkerCrashed as exc:
            failure = exc  # raised outside the task group, not wrapped in a group
    if failure is not None:
        raise failure
    return results


async def test_crash_mid_map_with_and_without_retries(
    worker: dict[str, Any], namespace: str
) -> None:
    async with ProcessManager(namespace=namespace) as manager:
        pool = await manager.spawn_pool(
            "p", 2, **worker, data_channel=DATA, restart_policy=RESTART
        )
        results = await _map_with_a_crash(pool, return_exceptions=True)
        assert len(results) == 40
        crashed = [r for r in results if isinstance(r, WorkerCrashed)]
        assert crashed and all(isinstance(r, dict) for r in results if r not in crashed)
        await _wait_for(
            lambda: all(h.state is WorkerState.RUNNING for h in pool.handles)
        )
        with pytest.raises(WorkerCrashed):
            await _map_with_a_crash(pool)
        await _wait_for(
            lambda: all(h.state is WorkerState.RUNNING for h in pool.handles)
        )
        results = await _map_with_a_crash(pool, retries=2)
        assert len(results) == 40 and all(isinstance(r, dict) for r in results)
        assert pool.size == 2 and sum(h.restarts for h in pool.handles) == 3


async def test_a_failed_worker_is_reported_and_skipped(
    worker: dict[str, Any], namespace: str
) -> None:
    async with ProcessManager(namespace=namespace) as manager:
        pool = await manager.spawn_pool("p", 2, **worker, data_channel=DATA)
        with pytest.raises(WorkerCrashed):
            # One worker, directly: the pool would pick the least-loaded, maybe an idle one.
            await pool.handles[0].request_via_data("crash", {"code": 3})
        await _wait_for(lambda: pool.failed)
        assert len(pool.failed) == 1 and pool.size == 2
        assert [r async for r in pool.map("add", adds(20))] == [
            i + 1000 for i in range(20)
        ]


async def test_recycling_loses_no_request(
    worker: dict[str, Any], namespace: str
) -> None:
    async with ProcessManager(namespace=namespace) as manager:
        pool = await manager.spawn_pool(
            "p", 2, **worker, data_channel=DATA, max_requests_per_worker=10
        )
        first = {h.pid for h in pool.handles}
        spins = ({"microseconds": 2_000} for _ in range(60))
        results = [r async for r in pool.map("spin", spins)]
        assert len(results) == 60 and len({r["pid"] for r in results}) >= 6
        await _wait_for(lambda: len(pool.handles) == 2)
        assert not first & {h.pid for h in pool.handles}
        assert (
            len([h for h in manager.handles.values() if h.state is WorkerState.RUNNING])
            == 2
        )


async def test_resize_and_stop(worker: dict[str, Any], namespace: str) -> None:
    async with ProcessManager(namespace=namespace) as manager:
        pool = await manager.spawn_pool("p", 1, **worker, data_channel=DATA)
        await pool.resize(3)
        assert pool.size == 3 and [h.id for h in pool.handles] == ["p-0", "p-1", "p-2"]
        assert all(h.state is WorkerState.RUNNING for h in pool.handles)
        spins = ({"microseconds": 20_000} for _ in range(12))
        assert len({r["pid"] async for r in pool.map("spin", spins)}) == 3
        gone = pool.handles[1:]
        await pool.resize(1)
        assert pool.size == 1 and all(h.state is WorkerState.STOPPED for h in gone)
        assert await pool.request_via_data("add", {"a": 1, "b": 2}) == 3
        # Leaving the manager stops the pool (the hygiene fixture checks nothing is left).


def test_with_on_the_async_manager_points_to_the_blocking_api() -> None:
    with pytest.raises(TypeError, match=r"aspect_ipc\.sync"), ProcessManager():
        pass
