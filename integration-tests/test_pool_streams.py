"""Streams through a pool (pool.stream, pool.stream_via_data, pool.request(..., input=)) of
Python, Node and Go test workers: countTo, sumStream and echoStream (WORKERS.md)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from aspect_ipc import DataChannelOptions, ProcessManager, WorkerCrashed

pytestmark = pytest.mark.anyio
DATA = DataChannelOptions(enabled=True)


async def wait_for(condition: Any) -> None:
    with anyio.fail_after(10):  # a hang guard: it happened, however long it took
        while not condition():
            await anyio.sleep(0.01)


@pytest.mark.parametrize("via", ["control", "data"])
async def test_pool_streams_deliver_every_item_in_order(
    worker: dict[str, Any], namespace: str, via: str
) -> None:
    async with ProcessManager(namespace=namespace) as manager:
        pool = await manager.spawn_pool("p", 2, **worker, data_channel=DATA)
        stream = pool.stream_via_data if via == "data" else pool.stream
        for window in (1, 16):
            call = stream("countTo", {"n": 300, "size": 0}, window=window)
            assert [item async for item in call] == list(range(300))
            assert call.result == {"count": 300} and call.worker in pool.handles
        if via == "data":
            binary = pool.stream_via_data("countTo", {"n": 20, "size": 1024})
            items = [item async for item in binary]
            assert [int.from_bytes(b[:8], "big") for b in items] == list(range(20))


async def test_an_open_stream_counts_as_in_flight_on_its_worker(
    worker: dict[str, Any], namespace: str
) -> None:
    async with ProcessManager(namespace=namespace) as manager:
        pool = await manager.spawn_pool("p", 2, **worker, data_channel=DATA)
        stream = pool.stream_via_data("countTo", {"n": 3, "size": 0}, window=1)
        assert await stream.__anext__() == 0
        other = next(h for h in pool.handles if h is not stream.worker)
        for _ in range(3):  # the least-loaded worker is the one without the stream
            assert (await pool.request_via_data("info"))["pid"] == other.pid
        assert [item async for item in stream] == [1, 2]


async def test_breaking_out_of_a_pool_stream_cancels_the_worker(
    worker: dict[str, Any], namespace: str
) -> None:
    observed: list[Any] = []
    async with ProcessManager(namespace=namespace) as manager:
        pool = await manager.spawn_pool("p", 2, **worker, data_channel=DATA)
        for handle in pool.handles:
            handle.on_notification("cancelObserved", observed.append)
        endless = {"n": 10**9, "size": 0}
        async for item in pool.stream_via_data(
            "countTo", {**endless, "tag": "a"}, window=4
        ):
            if item == 10:
                break
        await wait_for(lambda: observed == [{"tag": "a"}])
        async with pool.stream("countTo", {**endless, "tag": "b"}, window=4) as call:
            async for item in call:
                if item == 10:
                    break
        await wait_for(lambda: len(observed) == 2)
        assert observed[1] == {"tag": "b"}
        assert await pool.request("add", {"a": 1, "b": 1}) == 2


async def test_a_crash_mid_stream_raises_worker_crashed(
    worker: dict[str, Any], namespace: str
) -> None:
    async with ProcessManager(namespace=namespace) as manager:
        pool = await manager.spawn_pool("p", 2, **worker, data_channel=DATA)
        call = pool.stream_via_data("countTo", {"n": 10**9, "size": 0}, window=2)
        with pytest.raises(WorkerCrashed):
            async for item in call:
                if item == 1:
                    assert call.worker is not None and call.worker.pid is not None
                    os.kill(call.worker.pid, signal.SIGKILL)
        # The live worker serves.
        assert await pool.request("add", {"a": 2, "b": 3}) == 5


async def test_input_streams_from_lazy_generators(
    worker: dict[str, Any], namespace: str
) -> None:
    read = 0

    def numbers(n: int) -> Iterator[int]:
        nonlocal read
        for i in range(n):
            read += 1
            yield i

    async with ProcessManager(namespace=namespace) as manager:
        pool = await manager.spawn_pool("p", 2, **worker, data_channel=DATA)
        total = await pool.request_via_data("sumStream", {}, input=numbers(20_000))
        assert total == sum(range(20_000)) and read == 20_000
        assert await pool.request("sumStream", {}, input=[0.5, 1, 2]) == 3.5
        read = 0
        echo = pool.stream_via_data("echoStream", {}, window=4, input=numbers(10**9))
        count = 0
        async for item in echo:
            assert item == count
            count += 1
            assert read - count <= 40  # the windows, never the whole input
            if count == 1000:
                break
