"""Streams in the blocking API (aspect_ipc.sync) with Python, Node and Go test workers: plain
iterators of countTo and echoStream, plain iterables into sumStream, from several threads."""

from __future__ import annotations

import gc
import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from aspect_ipc import DataChannelOptions, RemoteError, WorkerCrashed
from aspect_ipc.sync import INPUT_THREAD, ProcessManager

DATA = DataChannelOptions(enabled=True)


def wait_for(condition: Any) -> None:
    deadline = time.monotonic() + 10  # a hang guard: it happened, however long it took
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.mark.parametrize("via", ["control", "data"])
def test_blocking_streams_deliver_every_item_in_order(
    worker: dict[str, Any], namespace: str, via: str
) -> None:
    with ProcessManager(namespace) as manager:
        handle = manager.spawn("w", **worker, data_channel=DATA)
        pool = manager.spawn_pool("p", 2, **worker, data_channel=DATA)
        for owner in (handle, pool):
            stream = owner.stream_via_data if via == "data" else owner.stream
            for window in (1, 16):
                items = stream("countTo", {"n": 300, "size": 0}, window=window)
                assert list(items) == list(range(300))
                assert items.result == {"count": 300}
        values = [0, "x", None, {"k": [1, 2]}, 2**40] * 10
        echo = handle.stream("echoStream", {}, window=2, input=iter(values))
        assert list(echo) == values and echo.result == {"count": len(values)}


def test_breaking_out_cancels_the_worker(
    worker: dict[str, Any], namespace: str
) -> None:
    observed: list[Any] = []
    endless = {"n": 10**9, "size": 0}
    with ProcessManager(namespace) as manager:
        handle = manager.spawn("w", **worker, data_channel=DATA)
        handle.on_notification("cancelObserved", observed.append)
        for item in handle.stream_via_data(
            "countTo", {**endless, "tag": "bare"}, window=4
        ):
            if item == 10:
                break  # the dropped iterator cancels
        gc.collect()
        wait_for(lambda: observed == [{"tag": "bare"}])
        with handle.stream("countTo", {**endless, "tag": "with"}, window=4) as items:
            for item in items:
                if item == 10:
                    break
        wait_for(lambda: len(observed) == 2)
        pool = manager.spawn_pool("p", 1, **worker, data_channel=DATA)
        pool.handles[0].on_notification("cancelObserved", observed.append)
        pooled = pool.stream_via_data("countTo", {**endless, "tag": "pool"}, window=4)
        assert next(pooled) == 0
        pooled.close()
        wait_for(lambda: len(observed) == 3)
        assert [o["tag"] for o in observed] == ["bare", "with", "pool"]
        assert handle.request("add", {"a": 1, "b": 1}) == 2


def test_a_crash_mid_stream_raises_worker_crashed(
    worker: dict[str, Any], namespace: str
) -> None:
    with ProcessManager(namespace) as manager:
        handle = manager.spawn("w", **worker, data_channel=DATA)
        with pytest.raises(WorkerCrashed):
            for item in handle.stream_via_data(
                "countTo", {"n": 10**9, "size": 0}, window=2
            ):
                if item == 1:
                    assert handle.pid is not None
                    os.kill(handle.pid, signal.SIGKILL)


def test_input_from_a_lazy_generator_is_never_held_whole(
    worker: dict[str, Any], namespace: str
) -> None:
    read = 0
    threads: set[str] = set()

    def numbers(n: int) -> Iterator[int]:
        nonlocal read
        for i in range(n):
            read += 1
            threads.add(threading.current_thread().name)
            yield i

    with ProcessManager(namespace) as manager:
        handle = manager.spawn("w", **worker, data_channel=DATA)
        assert handle.request_via_data("sumStream", {}, input=numbers(20_000)) == sum(
            range(20_000)
        )
        assert read == 20_000 and threads == {threading.current_thread().name}
        read, threads = 0, set()
        count = 0
        with handle.stream_via_data(
            "echoStream", {}, window=4, input=numbers(10**9)
        ) as echo:
            for count, item in enumerate(echo, 1):
                assert item == count - 1
                assert read - count <= 64  # windows and pipes, never the whole input
                if count == 1000:
                    break
        assert count == 1000 and threads == {INPUT_THREAD}
        with pytest.raises(RemoteError):
            handle.request("sumStream", {}, input=iter([1, "two", 3]))


def test_four_threads_at_once_on_one_blocking_handle(
    worker: dict[str, Any], namespace: str
) -> None:
    with ProcessManager(namespace) as manager:
        handle = manager.spawn("w", **worker, data_channel=DATA)

        def work(n: int) -> tuple[int, list[Any], list[Any]]:
            total = handle.request_via_data(
                "sumStream", {}, input=(i * n for i in range(2000))
            )
            counted = list(handle.stream_via_data("countTo", {"n": 500 + n, "size": 0}))
            echoed = list(handle.stream("echoStream", {}, input=iter([n] * 100)))
            return total, counted, echoed

        with ThreadPoolExecutor(4) as executor:
            results = list(executor.map(work, range(4)))
        for n, (total, counted, echoed) in enumerate(results):
            assert total == n * sum(range(2000))
            assert counted == list(range(500 + n)) and echoed == [n] * 100
