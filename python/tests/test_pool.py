"""WorkerPool and map with real Python workers, on asyncio and trio."""

from __future__ import annotations

import itertools
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import pytest

from aspect_ipc import (
    DataChannelOptions,
    ProcessManager,
    RemoteError,
    RestartPolicy,
    WorkerCrashed,
    WorkerIdInUse,
    WorkerPool,
    WorkerState,
    WorkerUnavailable,
)
from workers import child_pids, namespace, python_worker

pytestmark = pytest.mark.anyio
DATA = DataChannelOptions(enabled=True)


def adds(n: int) -> Iterator[dict[str, int]]:
    return ({"a": i, "b": 1000} for i in range(n))


async def test_pool_spawns_named_workers_and_spreads_requests() -> None:
    async with ProcessManager(namespace=namespace()) as manager:
        pool = await manager.spawn_pool("p", 2, **python_worker(), data_channel=DATA)
        assert isinstance(pool, WorkerPool) and pool.size == 2
        assert [h.id for h in pool.handles] == ["p-0", "p-1"]
        assert await pool.request("add", {"a": 1, "b": 2}) == 3
        assert await pool.request_via_data("add", {"a": 1, "b": 3}) == 4
        pids: set[int] = set()

        async def spin() -> None:
            pids.add((await pool.request_via_data("spin", {"microseconds": 50_000}))["pid"])

        async with anyio.create_task_group() as task_group:
            for _ in range(4):
                task_group.start_soon(spin)
        assert pids == {h.pid for h in pool.handles}  # least-loaded: both got work
        with pytest.raises(WorkerIdInUse):
            await manager.spawn_pool("p", 1, **python_worker())
    assert child_pids() == set()


async def test_map_ordered_unordered_and_lazy() -> None:
    read = 0

    def items() -> Iterator[dict[str, int]]:
        nonlocal read
        for i in itertools.count():
            read += 1
            yield {"a": i, "b": 1}

    async with ProcessManager(namespace=namespace()) as manager:
        pool = await manager.spawn_pool("p", 2, **python_worker(), data_channel=DATA)
        results = [r async for r in pool.map("add", adds(200))]
        assert results == [i + 1000 for i in range(200)]
        results = [r async for r in pool.map("add", adds(200), ordered=False, via="control")]
        assert sorted(results) == [i + 1000 for i in range(200)]
        # An endless input: only the window is ever read ahead.
        async with pool.map("add", items(), max_in_flight=5) as mapped:
            async for result in mapped:
                if result == 50:
                    break
        assert read <= 50 + 5 + 1

        async def async_items() -> AsyncIterator[dict[str, int]]:
            for i in range(20):
                yield {"a": i, "b": 0}

        assert [r async for r in pool.map("add", async_items())] == list(range(20))


async def test_breaking_out_cancels_what_is_in_flight() -> None:
    cancelled: list[Any] = []
    async with ProcessManager(namespace=namespace()) as manager:
        manager.on("output", lambda e: None)
        pool = await manager.spawn_pool("p", 2, **python_worker(), data_channel=DATA)
        for handle in pool.handles:
            handle.on_notification("cancelObserved", cancelled.append)
        tags = ({"seconds": 0.0 if i == 0 else 30.0, "tag": str(i)} for i in range(100))
        async for result in pool.map("sleep", tags, max_in_flight=4):
            assert result == "done"
            break
        with anyio.fail_after(10):  # a hang guard: the finalizer cancelled the rest
            while len(cancelled) < 3:
                await anyio.sleep(0.01)
        assert await pool.request("add", {"a": 1, "b": 1}) == 2


async def test_failures_raise_or_come_in_place() -> None:
    async with ProcessManager(namespace=namespace()) as manager:
        pool = await manager.spawn_pool("p", 2, **python_worker())
        items = [{"a": 1, "b": 1}, {"a": "x", "b": 1}, {"a": 2, "b": 2}]
        with pytest.raises(RemoteError):
            async for _ in pool.map("add", items, via="control"):
                pass
        out = [r async for r in pool.map("add", items, via="control", return_exceptions=True)]
        assert out[0] == 2 and isinstance(out[1], RemoteError) and out[2] == 4


async def test_a_failure_out_of_order_says_which_item_failed() -> None:
    # With ordered=False its place tells nothing: the exception carried no item, index or
    # params (the realistic-apps drill could not tie 10-20 outcomes a run to their items).
    async with ProcessManager(namespace=namespace()) as manager:
        pool = await manager.spawn_pool("p", 2, **python_worker())
        items = [{"a": i, "b": 1} if i % 7 else {"a": "x", "b": i} for i in range(30)]
        outcomes = [
            r
            async for r in pool.map(
                "add", items, via="control", ordered=False, return_exceptions=True
            )
        ]
        failed = sorted(r.map_index for r in outcomes if isinstance(r, RemoteError))
        assert failed == [0, 7, 14, 21, 28]
        with pytest.raises(RemoteError) as raised:
            async for _ in pool.map("add", items[1:], via="control"):
                pass
        assert raised.value.map_index == 6  # type: ignore[attr-defined]
        assert "(pool.map: item 6 of the input, counting from 0)" in raised.value.__notes__


async def test_crash_mid_map_with_and_without_retries() -> None:
    policy = RestartPolicy(enabled=True, backoff=0.05, max_restarts=10)
    async with ProcessManager(namespace=namespace()) as manager:
        pool = await manager.spawn_pool("p", 2, **python_worker(), restart_policy=policy)
        # Without retries: the item on the crashed worker fails with WorkerCrashed.
        payloads = [{"microseconds": 1000}] * 10 + [{"code": 3}]
        methods = ["spin"] * 10 + ["crash"]
        outs = []
        for method, params in zip(methods, payloads, strict=True):
            outs.append(pool.request(method, params))
        results: list[Any] = []

        async def run(coro: Any) -> None:
            try:
                results.append(await coro)
            except WorkerCrashed as exc:
                results.append(exc)

        async with anyio.create_task_group() as task_group:
            for coro in outs:
                task_group.start_soon(run, coro)
        assert any(isinstance(r, WorkerCrashed) for r in results)
        with anyio.fail_after(10):
            while any(h.state is not WorkerState.RUNNING for h in pool.handles):
                await anyio.sleep(0.01)
        assert pool.size == 2 and sum(h.restarts for h in pool.handles) == 1


async def test_recycling_loses_nothing_and_resize() -> None:
    async with ProcessManager(namespace=namespace()) as manager:
        pool = await manager.spawn_pool(
            "p", 2, **python_worker(), data_channel=DATA, max_requests_per_worker=10
        )
        first = {h.pid for h in pool.handles}
        results = [r async for r in pool.map("add", adds(100))]
        assert results == [i + 1000 for i in range(100)]
        with anyio.fail_after(10):
            while len(pool.handles) < 2:
                await anyio.sleep(0.01)
        assert not first & {h.pid for h in pool.handles}
        assert all(h.id.startswith(("p-0.", "p-1.")) for h in pool.handles)
        # The recycled workers (about 10) are gone from the manager once stopped; their
        # requests stay in its totals. A long-lived pool does not keep every worker it had.
        with anyio.fail_after(10):
            while set(manager.handles) != {h.id for h in pool.handles}:
                await anyio.sleep(0.01)
        assert manager.stats().requests_sent >= 100
        await pool.resize(3)
        assert pool.size == 3 and len(pool.handles) == 3
        await pool.resize(1)
        assert pool.size == 1 and [r async for r in pool.map("add", adds(5))] == [
            1000,
            1001,
            1002,
            1003,
            1004,
        ]
        await pool.stop()
        assert all(h.state is WorkerState.STOPPED for h in pool.handles)
        # A pool of one that recycles: requests wait for the replacement, none is lost.
        single = await manager.spawn_pool(
            "s", 1, **python_worker(), data_channel=DATA, max_requests_per_worker=3
        )
        assert [r async for r in single.map("add", adds(10))] == [i + 1000 for i in range(10)]
        assert single.handles[0].id.startswith("s-0.")
    assert child_pids() == set()


async def test_a_map_on_a_stopped_pool_raises_and_closes() -> None:
    # It raised WorkerUnavailable, then waited forever (shielded) for a runner that never ran.
    async with ProcessManager(namespace=namespace()) as manager:
        pool = await manager.spawn_pool("p", 2, **python_worker())
        await pool.stop()
        with anyio.fail_after(10):  # a hang guard
            results = pool.map("echo", [[1], [2]])
            with pytest.raises(WorkerUnavailable, match="pool 'p' is stopped"):
                async for _ in results:
                    pass
            await results.aclose()
            async with pool.map("echo", [[1]]) as again:
                with pytest.raises(WorkerUnavailable):
                    await again.__anext__()


async def test_an_input_that_fails_raises_after_what_it_gave() -> None:
    def items() -> Iterator[dict[str, int]]:
        yield {"a": 1, "b": 1}
        raise ValueError("bad input")

    async with ProcessManager(namespace=namespace()) as manager:
        pool = await manager.spawn_pool("p", 2, **python_worker())
        got = []
        with pytest.raises(ValueError, match="bad input"):
            async for result in pool.map("add", items(), via="control"):
                got.append(result)
        assert got == [2]


def test_with_on_the_async_manager_says_what_to_use() -> None:
    with pytest.raises(TypeError, match=r"aspect_ipc\.sync"), ProcessManager():
        pass


async def test_spawn_options_reach_every_worker_of_the_pool() -> None:
    """Every spawn option passes through the pool, remote_tracebacks and env included, also to
    workers a resize starts later."""
    async with ProcessManager(namespace=namespace()) as manager:
        pool = await manager.spawn_pool(
            "opt", 1, **python_worker(), remote_tracebacks=False, env={"POOL_MARK": "m"}
        )
        await pool.resize(2)
        for worker_id in ("opt-0", "opt-1"):
            handle = manager.get(worker_id)
            with pytest.raises(RemoteError) as info:
                await handle.request("fail", {"message": "secret"})
            assert info.value.data == {"type": "RuntimeError"}
            assert info.value.remote_traceback is None
            assert await handle.request("getEnv", {"name": "POOL_MARK"}) == "m"


async def test_resizes_called_together_run_one_after_the_other() -> None:
    # A resize(2) that came while a resize(0) waited for a request in flight raised
    # WorkerIdInUse and left the pool with a size and no worker, for good.
    async with ProcessManager(namespace=namespace()) as manager:
        pool = await manager.spawn_pool("p", 1, **python_worker(), data_channel=DATA)
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(pool.request, "sleep", {"seconds": 0.5, "tag": "busy"})
            with anyio.fail_after(10):  # a hang guard
                while not pool.handles[0].stats().control.in_flight:
                    await anyio.sleep(0.01)
                task_group.start_soon(pool.resize, 0)
                while pool.size != 0:  # the first resize has the slots
                    await anyio.sleep(0.01)
                await pool.resize(2)
        assert pool.size == 2 and len(pool.handles) == 2
        assert len({h.id for h in pool.handles}) == 2
        assert [r async for r in pool.map("add", adds(4))] == [1000, 1001, 1002, 1003]


async def test_a_slot_regrown_while_its_recycled_worker_finishes_gets_a_new_id() -> None:
    # Recycled workers still answering hold their slots' old ids; shrinking and growing again
    # gave a new worker such an id (WorkerIdInUse), and the slot stayed empty.
    async with ProcessManager(namespace=namespace()) as manager:
        pool = await manager.spawn_pool(
            "p", 2, **python_worker(), data_channel=DATA, max_requests_per_worker=1
        )
        async with anyio.create_task_group() as task_group:
            for tag in ("a", "b"):  # each worker's one request: both are recycled
                task_group.start_soon(pool.request, "sleep", {"seconds": 1.0, "tag": tag})
            with anyio.fail_after(10):  # a hang guard
                while {h.id for h in pool.handles} != {"p-0.1", "p-1.1"}:  # replacements run
                    await anyio.sleep(0.01)
            await pool.resize(1)
            await pool.resize(2)
            # p-0 and p-1 are still answering: slot 1's next worker is p-1.2, not p-1 again.
            assert [h.id for h in pool.handles] == ["p-0.1", "p-1.2"]
        assert [r async for r in pool.map("add", adds(4))] == [1000, 1001, 1002, 1003]


async def test_resize_to_the_same_size_replaces_a_failed_worker() -> None:
    # A failed worker in any slot but the last could not be replaced by shrinking, then growing.
    async with ProcessManager(namespace=namespace()) as manager:
        pool = await manager.spawn_pool("p", 2, **python_worker(), data_channel=DATA)
        first = pool.handles[0]
        with pytest.raises(WorkerCrashed):
            await first.request("crash", {"code": 3})
        with anyio.fail_after(10):  # a hang guard
            await first.wait()
        assert pool.failed == [first]
        await pool.resize(pool.size)
        assert pool.failed == [] and len(pool.handles) == 2
        assert all(h.state is WorkerState.RUNNING for h in pool.handles)
        assert first.id not in manager.handles
        assert [r async for r in pool.map("add", adds(4))] == [1000, 1001, 1002, 1003]


async def test_leaving_the_manager_while_a_replacement_starts_is_not_a_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Each request retires the worker: the manager closes with a replacement starting, which
    # the pool logged as "replacing ... failed" (a WARNING for a normal end).
    caplog.set_level(logging.WARNING, logger="aspect_ipc.pool")
    async with ProcessManager(namespace=namespace()) as manager:
        pool = await manager.spawn_pool(
            "p", 1, **python_worker(), data_channel=DATA, max_requests_per_worker=1
        )
        assert [r async for r in pool.map("add", adds(4))] == [1000, 1001, 1002, 1003]
    assert [r.getMessage() for r in caplog.records if r.name == "aspect_ipc.pool"] == []
