"""Streams (PROTOCOL.md 13) between a Python parent and Python, Node and Go workers: countTo,
sumStream and echoStream (WORKERS.md), on both channels, with real processes and sockets."""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from aspect_ipc import DataChannelOptions, ProcessManager, RemoteError, WorkerCrashed

pytestmark = pytest.mark.anyio
DATA = DataChannelOptions(enabled=True)


@pytest.mark.parametrize("via", ["control", "data"])
async def test_count_to_streams_items_then_the_final_value(
    worker: dict[str, Any], namespace: str, via: str
) -> None:
    async with ProcessManager(namespace=namespace) as manager:
        handle = await manager.spawn("w", **worker, data_channel=DATA)
        stream = handle.stream_via_data if via == "data" else handle.stream
        for window in (1, 3, 16):
            call = stream("countTo", {"n": 50, "size": 0}, window=window)
            assert [item async for item in call] == list(range(50))
            assert call.result == {"count": 50}
        empty = stream("countTo", {"n": 0, "size": 0})
        assert [item async for item in empty] == [] and empty.result == {"count": 0}


async def test_binary_items_on_data(worker: dict[str, Any], namespace: str) -> None:
    async with ProcessManager(namespace=namespace) as manager:
        handle = await manager.spawn("w", **worker, data_channel=DATA)
        items = [
            item
            async for item in handle.stream_via_data("countTo", {"n": 5, "size": 4096})
        ]
        assert [int.from_bytes(b[:8], "big") for b in items] == list(range(5))
        assert all(len(b) == 4096 and not any(b[8:]) for b in items)


async def test_breaking_out_cancels_the_producer(
    worker: dict[str, Any], namespace: str
) -> None:
    observed: list[Any] = []
    async with ProcessManager(namespace=namespace) as manager:
        handle = await manager.spawn("w", **worker, data_channel=DATA)
        handle.on_notification("cancelObserved", observed.append)
        async for item in handle.stream_via_data(
            "countTo", {"n": 10**9, "size": 0, "tag": "break"}, window=4
        ):
            if item == 10:
                break
        with anyio.fail_after(5):  # a hang guard: the worker saw the cancellation
            while not observed:
                await anyio.sleep(0.01)
        assert observed == [{"tag": "break"}]
        assert await handle.request("add", {"a": 1, "b": 1}) == 2


@pytest.mark.parametrize("via", ["control", "data"])
async def test_sum_stream_from_sync_and_async_iterables(
    worker: dict[str, Any], namespace: str, via: str
) -> None:
    async def numbers() -> AsyncIterator[float]:
        for i in range(200):
            yield i * 0.5

    async with ProcessManager(namespace=namespace) as manager:
        handle = await manager.spawn("w", **worker, data_channel=DATA)
        call = handle.request_via_data if via == "data" else handle.request
        assert await call("sumStream", {}, input=range(1000)) == sum(range(1000))
        assert await call("sumStream", {}, input=[]) == 0
        assert await call("sumStream", {}, input=numbers()) == sum(
            i * 0.5 for i in range(200)
        )


async def test_sum_stream_rejects_a_bad_item_early(
    worker: dict[str, Any], namespace: str
) -> None:
    def items() -> Any:
        yield 1
        yield 2
        yield "three"
        while True:  # never read: the answer ends the input stream (13.6)
            yield 4

    async with ProcessManager(namespace=namespace) as manager:
        handle = await manager.spawn("w", **worker, data_channel=DATA)
        with pytest.raises(RemoteError) as info:
            await handle.request_via_data("sumStream", {}, input=items())
        assert info.value.code == -32602 and "item 2" in info.value.message
        assert await handle.request_via_data("add", {"a": 1, "b": 1}) == 2


async def test_echo_stream_both_directions(
    worker: dict[str, Any], namespace: str
) -> None:
    values = [0, "x", None, {"k": [1, 2]}, b"\x00\xff", 2**40] * 20
    async with ProcessManager(namespace=namespace) as manager:
        handle = await manager.spawn("w", **worker, data_channel=DATA)
        call = handle.stream_via_data("echoStream", {}, window=2, input=values)
        assert [item async for item in call] == values
        assert call.result == {"count": len(values)}


async def test_missing_stream_is_invalid_params(
    worker: dict[str, Any], namespace: str
) -> None:
    async with ProcessManager(namespace=namespace) as manager:
        handle = await manager.spawn("w", **worker, data_channel=DATA)
        for method, params in (("countTo", {"n": 2, "size": 0}), ("sumStream", {})):
            with pytest.raises(RemoteError) as info:
                await handle.request(method, params)
            assert info.value.code == -32602


async def test_crash_fails_the_next_step_with_worker_crashed(
    worker: dict[str, Any], namespace: str
) -> None:
    async with ProcessManager(namespace=namespace) as manager:
        handle = await manager.spawn("w", **worker, data_channel=DATA)
        with pytest.raises(WorkerCrashed):
            async for item in handle.stream_via_data(
                "countTo", {"n": 10**9, "size": 0}, window=2
            ):
                if item == 1:
                    assert handle.pid is not None
                    os.kill(handle.pid, signal.SIGKILL)
