"""Streams through a WorkerPool (pool.stream, pool.stream_via_data, request(..., input=)) with
real Python workers, on asyncio and trio."""

from __future__ import annotations

import gc
import os
import signal
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import pytest

from aspect_ipc import (
    DataChannelOptions,
    ProcessManager,
    RemoteError,
    WorkerCrashed,
    WorkerPool,
)
from workers import child_pids, namespace, python_worker

pytestmark = pytest.mark.anyio
DATA = DataChannelOptions(enabled=True)


def in_flight(pool: WorkerPool) -> list[int]:
    return [m.in_flight for m in pool._members if m is not None]


async def wait_for(condition: Any, what: str) -> None:
    with anyio.fail_after(10):  # a hang guard, not a timing assertion
        while not condition():
            await anyio.sleep(0.01)


async def test_pool_streams_in_order_and_count_in_flight_until_they_end() -> None:
    async with ProcessManager(namespace=namespace()) as manager:
        pool = await manager.spawn_pool("p", 2, **python_worker(), data_channel=DATA)
        for via, opener in (("control", pool.stream), ("data", pool.stream_via_data)):
            stream = opener("countTo", {"n": 30, "size": 0}, window=3)
            assert stream.worker is None  # chosen at the first step
            assert [item async for item in stream] == list(range(30)), via
            assert stream.result == {"count": 30}
            assert stream.worker in pool.handles
            assert in_flight(pool) == [0, 0]
        # An open stream is a request in flight: the next request goes to the other worker.
        stream = pool.stream_via_data("countTo", {"n": 5, "size": 0}, window=1)
        assert await stream.__anext__() == 0
        assert sorted(in_flight(pool)) == [0, 1]
        busy = stream.worker
        other = [h for h in pool.handles if h is not busy]
        pid = await pool.request("info")
        assert pid["pid"] == other[0].pid
        assert [item async for item in stream] == [1, 2, 3, 4]
        assert in_flight(pool) == [0, 0]
        binary = [b async for b in pool.stream_via_data("countTo", {"n": 3, "size": 64})]
        assert [int.from_bytes(b[:8], "big") for b in binary] == [0, 1, 2]
    assert child_pids() == set()


async def test_breaking_out_cancels_the_producer_and_frees_the_worker() -> None:
    observed: list[Any] = []
    async with ProcessManager(namespace=namespace()) as manager:
        pool = await manager.spawn_pool("p", 2, **python_worker(), data_channel=DATA)
        for handle in pool.handles:
            handle.on_notification("cancelObserved", observed.append)
        params = {"n": 10**9, "size": 0}
        async with pool.stream_via_data("countTo", {**params, "tag": "with"}, window=2) as s:
            async for item in s:
                if item == 3:
                    break
        await wait_for(lambda: observed == [{"tag": "with"}], "the cancellation")
        async for item in pool.stream("countTo", {**params, "tag": "bare"}, window=2):
            if item == 3:
                break  # the dropped stream cancels the request
        gc.collect()
        await wait_for(lambda: len(observed) == 2, "the cancellation")
        assert observed[1] == {"tag": "bare"} and in_flight(pool) == [0, 0]
        assert await pool.request("add", {"a": 1, "b": 1}) == 2


async def test_a_crash_mid_stream_raises_worker_crashed_without_retry() -> None:
    async with ProcessManager(namespace=namespace()) as manager:
        pool = await manager.spawn_pool("p", 2, **python_worker(), data_channel=DATA)
        stream = pool.stream_via_data("countTo", {"n": 10**9, "size": 0}, window=2)
        seen = []
        with pytest.raises(WorkerCrashed):
            async for item in stream:
                seen.append(item)
                if item == 1:
                    assert stream.worker is not None and stream.worker.pid is not None
                    os.kill(stream.worker.pid, signal.SIGKILL)
        assert seen[:2] == [0, 1] and in_flight(pool) == [0, 0]
        assert await pool.request("add", {"a": 2, "b": 2}) == 4  # the other worker serves


async def test_input_streams_through_the_pool() -> None:
    read = 0

    def numbers(n: int) -> Iterator[int]:
        nonlocal read
        for i in range(n):
            read += 1
            yield i

    async def halves() -> AsyncIterator[float]:
        for i in range(10):
            yield i / 2

    async with ProcessManager(namespace=namespace()) as manager:
        pool = await manager.spawn_pool("p", 2, **python_worker(), data_channel=DATA)
        assert await pool.request("sumStream", {}, input=numbers(500)) == sum(range(500))
        assert await pool.request_via_data("sumStream", {}, input=halves()) == 22.5
        assert read == 500 and in_flight(pool) == [0, 0]
        echo = pool.stream_via_data("echoStream", {}, input=[b"\x00", "x", 3], window=1)
        assert [item async for item in echo] == [b"\x00", "x", 3]
        assert echo.result == {"count": 3}
        with pytest.raises(ValueError, match="retries cannot be used with input"):
            await pool.request("sumStream", {}, input=[1], retries=1)
        with pytest.raises(RemoteError) as info:
            await pool.request_via_data("sumStream", {}, input=[1, "two"])
        assert info.value.code == -32602
        with pytest.raises(ValueError, match="window"):
            pool.stream("countTo", {"n": 1, "size": 0}, window=0)


async def test_a_recycled_worker_finishes_its_stream_first() -> None:
    async with ProcessManager(namespace=namespace()) as manager:
        pool = await manager.spawn_pool(
            "p", 1, **python_worker(), data_channel=DATA, max_requests_per_worker=1
        )
        first = pool.handles[0]
        stream = pool.stream_via_data("countTo", {"n": 20, "size": 0}, window=2)
        assert await stream.__anext__() == 0  # its quota reached: retiring, replaced
        await wait_for(lambda: pool.handles and pool.handles[0] is not first, "the successor")
        assert [item async for item in stream] == list(range(1, 20))  # not cut short
        await wait_for(lambda: first.state.value == "stopped", "the retired worker's stop")
        assert await pool.request("add", {"a": 1, "b": 2}) == 3
    assert child_pids() == set()
