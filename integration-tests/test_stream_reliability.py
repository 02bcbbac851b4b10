"""Streams under trouble (issue 16, Reliability; PROTOCOL.md 13.3, 13.4, 13.6, 13.7): a worker
killed mid-stream, a consumer that breaks out, a producer that outruns its consumer, and many
streams sharing one channel. Python parent, Python, Node and Go workers (WORKERS.md: countTo,
sumStream, echoStream), real processes and sockets. The 1 GiB memory bounds are in
test_stream_memory.py."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import pytest
from aspect_ipc import (
    DataChannelOptions,
    ProcessHandle,
    ProcessManager,
    RemoteError,
    WorkerCrashed,
)

pytestmark = pytest.mark.anyio
DATA = DataChannelOptions(enabled=True)
WINDOW = 16  # the SDKs' default window: a request's input window, and our output window
CANCEL_BOUND = 0.1  # 13.6: a producer stops within 100 ms of the cancellation


def _kill(handle: ProcessHandle) -> None:
    assert handle.pid is not None
    os.kill(handle.pid, signal.SIGKILL)


def _stream(handle: ProcessHandle, via: str) -> Any:
    return handle.stream_via_data if via == "data" else handle.stream


def _request(handle: ProcessHandle, via: str) -> Any:
    return handle.request_via_data if via == "data" else handle.request


class Counted:
    """An endless input stream that counts the items the parent's SDK has pulled from it."""

    def __init__(self, item: Any = 1) -> None:
        self.pulled = 0
        self._item = item

    def __iter__(self) -> Iterator[Any]:
        while True:
            self.pulled += 1
            yield self._item


async def _settled(read: Any, pause: float = 0.3) -> int:
    """``read()`` once it has stopped changing for ``pause`` seconds (hang guard: 10 s)."""
    with anyio.fail_after(10):
        before = read()
        while True:
            await anyio.sleep(pause)
            now = read()
            if now == before:
                return int(now)
            before = now


# -- a crash mid-stream (13.7) ------------------------------------------------------------------


@pytest.mark.parametrize("via", ["control", "data"])
async def test_crash_while_streaming_out_fails_the_next_read(
    worker: dict[str, Any], namespace: str, via: str
) -> None:
    async with ProcessManager(namespace=namespace) as manager:
        handle = await manager.spawn("w", **worker, data_channel=DATA)
        taken = []
        with anyio.fail_after(20), pytest.raises(WorkerCrashed):
            async for item in _stream(handle, via)("countTo", {"n": 10**9, "size": 0}):
                taken.append(item)
                if item == 40:
                    _kill(handle)
        assert taken[:41] == list(range(41))  # buffered items may come; never a gap


@pytest.mark.parametrize("via", ["control", "data"])
async def test_crash_while_the_parent_waits_for_an_item(
    worker: dict[str, Any], namespace: str, via: str
) -> None:
    # echoStream answers each input item; the input then waits: so does the parent's read.
    release = anyio.Event()

    async def one_then_wait() -> AsyncIterator[str]:
        yield "first"
        await release.wait()
        yield "after the crash"  # the SDK's send of it fails: nothing goes out

    async with ProcessManager(namespace=namespace) as manager:
        handle = await manager.spawn("w", **worker, data_channel=DATA)
        async with _stream(handle, via)(
            "echoStream", {}, input=one_then_wait()
        ) as stream:
            with anyio.fail_after(20):
                assert await stream.__anext__() == "first"
                async with anyio.create_task_group() as tasks:
                    tasks.start_soon(_kill_soon, handle)
                    with pytest.raises(WorkerCrashed):
                        await stream.__anext__()
                release.set()  # the SDK's send of the next input item fails quietly
                await anyio.sleep(0.1)


async def _kill_soon(handle: ProcessHandle) -> None:
    await anyio.sleep(0.2)
    _kill(handle)


@pytest.mark.parametrize("via", ["control", "data"])
async def test_crash_while_consuming_an_input_stream(
    worker: dict[str, Any], namespace: str, via: str
) -> None:
    holder: list[ProcessHandle] = []

    def numbers() -> Iterator[int]:
        for i in range(10**9):
            if i == 100:
                _kill(holder[0])  # the worker dies while it sums
            yield i

    async with ProcessManager(namespace=namespace) as manager:
        handle = await manager.spawn("w", **worker, data_channel=DATA)
        holder.append(handle)
        with anyio.fail_after(20), pytest.raises(WorkerCrashed):
            await _request(handle, via)("sumStream", {}, input=numbers())


async def test_crash_while_the_input_producer_waits_for_credit(
    worker: dict[str, Any], namespace: str
) -> None:
    # The parent reads one echoed item and stops: the worker stops reading after its output
    # window, the parent's input after the worker's input window. Then the worker dies.
    items = Counted(bytes(1024))
    async with ProcessManager(namespace=namespace) as manager:
        handle = await manager.spawn("w", **worker, data_channel=DATA)
        crashed = anyio.Event()
        handle.on("crash", lambda event: crashed.set())
        stream = handle.stream_via_data("echoStream", {}, window=1, input=items)
        async with stream:
            with anyio.fail_after(20):
                assert await stream.__anext__() == bytes(1024)
                blocked = await _settled(lambda: items.pulled)
                _kill(handle)
                await crashed.wait()
                # The item buffered here is discarded.
                with pytest.raises(WorkerCrashed):
                    await stream.__anext__()
                stopped = items.pulled
                await anyio.sleep(0.2)
        # Read, the worker's input window, and the ones in hand; then the producer stopped.
        assert blocked <= 1 + WINDOW + 3
        assert items.pulled == stopped <= 1 + WINDOW + 3


# -- cancellation (13.6) ------------------------------------------------------------------------


@pytest.mark.parametrize("window", [1, 64])
@pytest.mark.parametrize("via", ["control", "data"])
async def test_breaking_out_stops_the_producer_within_100_ms(
    worker: dict[str, Any], namespace: str, via: str, window: int
) -> None:
    """From ``break`` to the worker's ``cancelObserved`` arriving here (on control): the
    round trip, so it bounds 13.6's 100 ms from above. Window 1: the producer is waiting for
    credit at the break; window 64: it is most likely busy sending."""
    arrivals: dict[str, float] = {}
    async with ProcessManager(namespace=namespace) as manager:
        handle = await manager.spawn("w", **worker, data_channel=DATA)
        handle.on_notification(
            "cancelObserved",
            lambda p: arrivals.setdefault(p["tag"], time.perf_counter()),
        )
        await handle.request("add", {"a": 1, "b": 1})  # warm both channels up
        delays = []
        for attempt in range(3):
            tag = f"break-{attempt}"
            params = {"n": 10**9, "size": 0, "tag": tag}
            async for item in _stream(handle, via)("countTo", params, window=window):
                if item == 200:
                    broke = time.perf_counter()
                    break
            with anyio.fail_after(5):  # a hang guard: the worker saw the cancellation
                while tag not in arrivals:
                    await anyio.sleep(0.001)
            delays.append(arrivals[tag] - broke)
        # Every cancellation was seen. Measured here: 0.5-7 ms. Two of three within the bound
        # (a loaded 2-core machine may stall any one process for a while), none far beyond it.
        assert sorted(delays)[1] < CANCEL_BOUND, f"delays {delays}"
        assert max(delays) < 5 * CANCEL_BOUND, f"delays {delays}"
        assert await _request(handle, via)("add", {"a": 1, "b": 1}) == 2


async def test_a_request_cancelled_while_it_sends_input_stops_pulling(
    worker: dict[str, Any], namespace: str
) -> None:
    items = Counted()
    async with ProcessManager(namespace=namespace) as manager:
        handle = await manager.spawn("w", **worker, data_channel=DATA)

        async def stalled_echo() -> None:  # never reads the output: the input stalls
            async with handle.stream_via_data("echoStream", {}, window=1, input=items):
                await anyio.sleep_forever()

        with anyio.move_on_after(1):
            await stalled_echo()
        stopped = items.pulled
        await anyio.sleep(0.3)
        assert items.pulled == stopped
        assert await handle.request_via_data("sumStream", {}, input=range(100)) == 4950


@pytest.mark.parametrize("via", ["control", "data"])
async def test_an_early_answer_stops_the_input_producer(
    worker: dict[str, Any], namespace: str, via: str
) -> None:
    # The worker ends the input stream by answering (13.6): a bad item gets -32602 at once.
    pulled = 0

    async def items() -> AsyncIterator[Any]:
        nonlocal pulled
        for i in range(10**9):
            pulled += 1
            yield "bad" if i == 50 else i
            await anyio.sleep(0.001)

    async with ProcessManager(namespace=namespace) as manager:
        handle = await manager.spawn("w", **worker, data_channel=DATA)
        with anyio.fail_after(20), pytest.raises(RemoteError) as info:
            await _request(handle, via)("sumStream", {}, input=items())
        answered = pulled
        assert info.value.code == -32602 and "item 50" in info.value.message
        await anyio.sleep(0.1)
        stopped = pulled
        await anyio.sleep(0.3)
        # Stopped within 100 ms of the answer: at most the item in hand was pulled after it
        # (never sent: the send raises -32011), not 1 ms items for 0.4 s.
        assert pulled == stopped <= answered + 1


# -- many streams on one channel (13.4) --------------------------------------------------------


@pytest.mark.parametrize("via", ["control", "data"])
async def test_many_streams_stay_independent(
    worker: dict[str, Any], namespace: str, via: str
) -> None:
    """Eight streams at once on one channel: one output stream the parent stops reading, one
    input stream whose producer stops producing, six that go on to the end; a request still
    answers while two are stalled, and the stalled ones resume intact."""
    release = anyio.Event()

    async def stalled_input() -> AsyncIterator[int]:
        for i in range(10):
            yield i
        await release.wait()
        for i in range(10, 100):
            yield i

    n = 3000
    async with ProcessManager(namespace=namespace) as manager:
        handle = await manager.spawn("w", **worker, data_channel=DATA)
        stream, request = _stream(handle, via), _request(handle, via)
        async with (
            stream("countTo", {"n": n, "size": 0}, window=4) as stalled,
            anyio.create_task_group() as tasks,
        ):
            assert await stalled.__anext__() == 0  # then no more reading for a while
            summed: list[Any] = []

            async def sum_later() -> None:
                summed.append(await request("sumStream", {}, input=stalled_input()))

            tasks.start_soon(sum_later)
            results: dict[int, list[Any]] = {}

            async def count(k: int) -> None:
                call = stream("countTo", {"n": n + k, "size": 0}, window=1 + 3 * k)
                results[k] = [item async for item in call] + [call.result]

            async def echo(k: int) -> None:
                values = [f"{k}:{i}" for i in range(500)]
                call = stream("echoStream", {}, window=8, input=values)
                assert [item async for item in call] == values
                results[k] = [call.result]

            with anyio.fail_after(60):
                async with anyio.create_task_group() as active:
                    for k in range(4):
                        active.start_soon(count, k)
                    for k in range(4, 6):
                        active.start_soon(echo, k)
                for k in range(4):
                    assert results[k] == [*range(n + k), {"count": n + k}]
                assert results[4] == results[5] == [{"count": 500}]
                # A request answers while two streams are stalled.
                assert await request("add", {"a": 2, "b": 3}) == 5
                assert not summed
                release.set()
                rest = [item async for item in stalled]
                assert rest == list(range(1, n)) and stalled.result == {"count": n}
        assert summed == [sum(range(100))]
