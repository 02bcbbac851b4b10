"""Streams in the blocking API (aspect_ipc.sync): plain iterators and plain iterables as input,
with real Python workers and no event loop in the test."""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from anyio.from_thread import start_blocking_portal

from aspect_ipc import (
    DataChannelOptions,
    RemoteError,
    RequestTimeout,
    WorkerCrashed,
    WorkerUnavailable,
)
from aspect_ipc.sync import INPUT_THREAD, LOOP_THREAD, ProcessManager
from aspect_ipc.sync._pipe import Pipe
from workers import PYTHON_WORKER, child_pids, namespace, pid_alive, python_worker

DATA = DataChannelOptions(enabled=True)
BACKENDS = pytest.mark.parametrize("backend", ["asyncio", "trio"])


def wait_for(condition: Any) -> None:
    deadline = time.monotonic() + 10  # a hang guard, not a timing assertion
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@BACKENDS
def test_pipe_moves_items_in_order_both_ways_within_its_capacity(backend: str) -> None:
    with start_blocking_portal(backend) as portal:
        soon = portal.call(_call_soon_of, backend)
        out = Pipe(4, soon)

        async def produce() -> None:
            for i in range(1000):
                assert await out.aput(i)
            out.finish("end")

        future = portal.start_task_soon(produce)
        got = []
        while True:
            try:
                got.append(out.get())
            except StopIteration as end:
                assert end.value == "end"
                break
            assert len(out._items) <= 4
        future.result()
        assert got == list(range(1000))

        into = Pipe(4, soon)

        async def consume() -> list[Any]:
            items = []
            try:
                while True:
                    items.append(await into.aget())
            except StopAsyncIteration:
                return items

        future2 = portal.start_task_soon(consume)
        for i in range(1000):
            assert into.put(i)
        into.finish()
        assert future2.result() == list(range(1000))
        failed = Pipe(4, soon)
        assert failed.put("before")
        failed.fail(ValueError("after the items"))
        assert failed.get() == "before"
        with pytest.raises(ValueError, match="after the items"):
            failed.get()
        closed = Pipe(1, soon)
        assert closed.put(1)
        threading.Timer(0.05, closed.close).start()
        assert closed.put(2) is False  # a full pipe's put wakes up when it is closed


async def _call_soon_of(backend: str) -> Any:
    if backend == "asyncio":
        import asyncio

        loop = asyncio.get_running_loop()

        def soon(function: Any) -> bool:
            loop.call_soon_threadsafe(function)
            return True

        return soon
    import trio

    token = trio.lowlevel.current_trio_token()

    def soon_trio(function: Any) -> bool:
        token.run_sync_soon(function)
        return True

    return soon_trio


@BACKENDS
def test_streams_are_plain_iterators_with_a_result(backend: str) -> None:
    with ProcessManager(namespace(), backend=backend) as manager:
        handle = manager.spawn("w", **python_worker(), data_channel=DATA)
        for opener in (handle.stream, handle.stream_via_data):
            items = opener("countTo", {"n": 100, "size": 0}, window=3)
            assert list(items) == list(range(100)) and items.result == {"count": 100}
            assert next(items, "done") == "done"
        with handle.stream_via_data("countTo", {"n": 3, "size": 16}) as binary:
            assert [int.from_bytes(b[:8], "big") for b in binary] == [0, 1, 2]
        echo = handle.stream_via_data("echoStream", {}, input=iter(["a", b"\x00", 3]))
        assert list(echo) == ["a", b"\x00", 3] and echo.result == {"count": 3}
        with pytest.raises(RemoteError) as info:
            list(handle.stream("countTo", {"n": -1, "size": 0}))
        assert info.value.code == -32602
        with pytest.raises(ValueError, match="window"):
            handle.stream("countTo", {"n": 1, "size": 0}, window=2000)
        with pytest.raises(TypeError, match="plain iterable"):
            handle.request("sumStream", {}, input=_async_numbers())  # type: ignore[arg-type]
    assert child_pids() == set()


async def _async_numbers() -> Any:
    yield 1


def test_each_blocking_iterator_has_its_async_object_and_a_pool_stream_its_worker() -> None:
    # docs/pools.md: ".aio on each object is the async object underneath".
    from aspect_ipc import PoolStream, WorkerStream
    from aspect_ipc._events import EventStream
    from aspect_ipc._pool_map import PoolMap
    from aspect_ipc.sync import ProcessHandle as BlockingHandle

    with ProcessManager(namespace()) as manager:
        pool = manager.spawn_pool("p", 2, **python_worker(), data_channel=DATA)
        with manager.events("exit") as events:
            assert type(events.aio) is EventStream
        with pool.map("echo", [[1], [2]]) as results:
            assert type(results.aio) is PoolMap and list(results) == [[1], [2]]
        stream = pool.stream_via_data("countTo", {"n": 2, "size": 0})
        assert type(stream.aio) is PoolStream and stream.worker is None  # no step yet
        assert next(stream) == 0
        assert isinstance(stream.worker, BlockingHandle)
        assert stream.worker.id in ("p-0", "p-1") and stream.worker.aio is stream.aio.worker
        assert list(stream) == [1]
        handle_stream = pool.handles[0].stream("countTo", {"n": 1, "size": 0})
        assert type(handle_stream.aio) is WorkerStream and list(handle_stream) == [0]


@BACKENDS
def test_break_close_and_garbage_collection_cancel_the_producer(backend: str) -> None:
    observed: list[Any] = []
    with ProcessManager(namespace(), backend=backend) as manager:
        handle = manager.spawn("w", **python_worker(), data_channel=DATA)
        handle.on_notification("cancelObserved", observed.append)
        endless = {"n": 10**9, "size": 0}
        with handle.stream_via_data("countTo", {**endless, "tag": "with"}, window=2) as items:
            for item in items:
                if item == 3:
                    break
        wait_for(lambda: len(observed) == 1)
        for item in handle.stream("countTo", {**endless, "tag": "bare"}, window=2):
            if item == 3:
                break  # dropped: its finalizer cancels
        gc.collect()
        wait_for(lambda: len(observed) == 2)
        kept = handle.stream_via_data("countTo", {**endless, "tag": "closed"}, window=2)
        assert next(kept) == 0
        blocked: list[Any] = []

        def read_on() -> None:
            blocked.extend(kept)  # ends when another thread closes the iterator

        reader = threading.Thread(target=read_on)
        reader.start()
        kept.close()
        reader.join(10)
        assert not reader.is_alive()
        wait_for(lambda: len(observed) == 3)
        assert [o["tag"] for o in observed] == ["with", "bare", "closed"]
        assert handle.request("add", {"a": 1, "b": 1}) == 2


@BACKENDS
def test_a_crash_mid_stream_raises_worker_crashed(backend: str) -> None:
    with ProcessManager(namespace(), backend=backend) as manager:
        handle = manager.spawn("w", **python_worker(), data_channel=DATA)
        with pytest.raises(WorkerCrashed):
            for item in handle.stream_via_data("countTo", {"n": 10**9, "size": 0}, window=2):
                if item == 1:
                    assert handle.pid is not None
                    os.kill(handle.pid, signal.SIGKILL)


@BACKENDS
def test_input_is_read_lazily_on_the_calling_thread(backend: str) -> None:
    threads: set[str] = set()
    read = 0

    def numbers(n: int) -> Iterator[int]:
        nonlocal read
        for i in range(n):
            threads.add(threading.current_thread().name)
            read += 1
            yield i

    with ProcessManager(namespace(), backend=backend) as manager:
        handle = manager.spawn("w", **python_worker(), data_channel=DATA)
        assert handle.request_via_data("sumStream", {}, input=numbers(5000)) == sum(range(5000))
        assert handle.request("sumStream", {}, input=[]) == 0
        assert threads == {threading.current_thread().name} and read == 5000
        # A stream's input is read on its own thread, and only as the output is read.
        read, threads = 0, set()
        echo = handle.stream_via_data("echoStream", {}, window=4, input=numbers(10**9))
        for count, item in enumerate(echo, 1):
            assert item == count - 1
            assert read - count <= 64  # windows and pipes, never the whole input
            if count == 300:
                break
        del echo
        assert threads == {INPUT_THREAD}


_IGNORING_WORKER = """
import anyio
from aspect_ipc.worker import Worker

worker = Worker()


@worker.data("ignoreInput", input_window=2)
async def ignore_input(params):
    await anyio.sleep(0.5)  # without reading: a parent that read ahead would have by now
    return "done"


worker.run()
"""


@BACKENDS
def test_input_is_read_no_further_than_the_worker_grants(backend: str, tmp_path: Any) -> None:
    # docs/streams.md: items are read only as the worker grants credit; here 2, and the one
    # item the sender holds while it waits for more (as the async API does). An item taken
    # from the iterable and never sent is lost to the caller's iterator.
    script = tmp_path / "ignoring.py"
    script.write_text(_IGNORING_WORKER)
    taken = 0

    def numbers() -> Iterator[bytes]:
        nonlocal taken
        while True:
            taken += 1
            yield bytes(1024)

    with ProcessManager(namespace(), backend=backend) as manager:
        handle = manager.spawn(
            "w", executable=sys.executable, args=[str(script)], data_channel=DATA
        )
        assert handle.request_via_data("ignoreInput", {}, input=numbers()) == "done"
        assert taken <= 3
        taken = 0
        stream = handle.stream_via_data("ignoreInput", {}, input=numbers())
        assert list(stream) == [] and stream.result == "done"
        assert taken <= 3


@BACKENDS
def test_a_blocking_input_does_not_stall_the_loop_and_timeouts_hold(backend: str) -> None:
    release = threading.Event()

    def slow() -> Iterator[int]:
        yield 1
        release.wait(10)  # blocks the thread that reads it, never the loop
        yield 2

    def failing() -> Iterator[int]:
        yield 1
        raise ValueError("the input broke")

    def trickle() -> Iterator[int]:
        while True:
            time.sleep(0.02)
            yield 1

    with ProcessManager(namespace(), backend=backend) as manager:
        handle = manager.spawn("w", **python_worker(), data_channel=DATA)
        with ThreadPoolExecutor(1) as executor:
            summing = executor.submit(handle.request_via_data, "sumStream", {}, input=slow())
            assert handle.request("add", {"a": 1, "b": 2}) == 3  # served meanwhile
            assert not summing.done()
            release.set()
            assert summing.result(10) == 3
        with pytest.raises(RemoteError, match="the input broke"):
            handle.request_via_data("sumStream", {}, input=failing())
        with pytest.raises(RequestTimeout):
            handle.request_via_data("sumStream", {}, input=trickle(), timeout=0.3)
        assert handle.request("add", {"a": 1, "b": 1}) == 2


@BACKENDS
def test_four_threads_stream_at_once_on_one_handle_and_a_pool(backend: str) -> None:
    with ProcessManager(namespace(), backend=backend) as manager:
        handle = manager.spawn("w", **python_worker(), data_channel=DATA)
        pool = manager.spawn_pool("p", 2, **python_worker(), data_channel=DATA)

        def work(n: int) -> tuple[int, list[Any], int, list[Any]]:
            numbers = (i * n for i in range(1000))
            total = handle.request_via_data("sumStream", {}, input=numbers)
            items = list(handle.stream_via_data("countTo", {"n": 200 + n, "size": 0}))
            pooled = pool.request("sumStream", {}, input=range(n * 100))
            echoed = list(pool.stream_via_data("echoStream", {}, input=[n] * 50))
            return total, items, pooled, echoed

        with ThreadPoolExecutor(4) as executor:
            results = list(executor.map(work, range(4)))
        for n, (total, items, pooled, echoed) in enumerate(results):
            assert total == n * sum(range(1000)) and items == list(range(200 + n))
            assert pooled == sum(range(n * 100)) and echoed == [n] * 50
        with pytest.raises(ValueError, match="retries"):
            pool.request("sumStream", {}, input=[1], retries=2)
        names = {t.name for t in threading.enumerate()}
        assert LOOP_THREAD in names


def test_a_stream_left_open_ends_when_the_manager_closes() -> None:
    with ProcessManager(namespace()) as manager:
        handle = manager.spawn("w", **python_worker(), data_channel=DATA)
        items = handle.stream_via_data("countTo", {"n": 10**9, "size": 0}, window=2)
        assert next(items) == 0
    with pytest.raises(WorkerUnavailable, match="closed"):
        while True:
            next(items)
    assert child_pids() == set()


@pytest.mark.parametrize("blocked_in", ["stream", "input"])
def test_ctrl_c_in_a_stream_stops_every_worker(tmp_path: Any, blocked_in: str) -> None:
    ns = namespace()
    script = tmp_path / "script.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import sys, time
            from aspect_ipc import DataChannelOptions
            from aspect_ipc.sync import ProcessManager

            def stuck():
                yield 1
                time.sleep(60)  # where the Ctrl-C lands, for {blocked_in!r} == "input"
                yield 2

            exits = []
            try:
                with ProcessManager({ns!r}) as manager:
                    manager.on("exit", exits.append)
                    handle = manager.spawn("w", executable=sys.executable,
                        args=[{PYTHON_WORKER!r}], data_channel=DataChannelOptions(enabled=True))
                    print(handle.pid, flush=True)
                    if {blocked_in!r} == "stream":
                        for item in handle.stream_via_data("echoStream", {{}}, input=stuck()):
                            print("item", item, flush=True)  # then waits for the next one
                    else:
                        handle.request_via_data("sumStream", {{}}, input=stuck())
            finally:
                print("stopped", sorted(e.worker_id for e in exits), flush=True)
            """
        )
    )
    process = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    pid = int(process.stdout.readline())
    if blocked_in == "stream":
        assert process.stdout.readline() == "item 1\n"
    time.sleep(0.3)  # let the main thread reach its wait
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=30)
    assert "KeyboardInterrupt" in stderr and process.returncode != 0
    assert "stopped ['w']" in stdout  # stopped by the script on its way out
    wait_for(lambda: not pid_alive(pid))
    assert not [p for p in os.listdir("/tmp") if p.startswith(ns)]
