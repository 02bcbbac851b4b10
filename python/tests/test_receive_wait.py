"""``DataChannelOptions.receive_wait`` (opt-in) with a real worker, on asyncio and trio: off by
default, what a wait that runs out does to the next ones, and what ends a wait early. Which
requests wait (counted with the busy polls), and the loop's turn between requests answered
while waiting, are in test_busy_poll.py, for both options.

Timings are never asserted; what the wait buys is measured by the bench (bench/README.md).
"""

from __future__ import annotations

import socket
import threading
from typing import Any

import anyio
import pytest

from aspect_ipc import DataChannelOptions, ProcessManager, SocketTransport, WorkerCrashed
from workers import namespace, python_worker

pytestmark = pytest.mark.anyio


async def test_nothing_waits_by_default() -> None:
    assert DataChannelOptions(enabled=True).receive_wait == 0
    async with ProcessManager(namespace=namespace()) as manager:
        handle = await manager.spawn(
            "w", **python_worker(), data_channel=DataChannelOptions(enabled=True)
        )
        for n in range(10):
            assert await handle.request_via_data("add", {"a": n, "b": 1}) == n + 1
        stats = handle.stats().data
        assert stats is not None and stats.busy_polls == 0


async def test_waits_that_run_out_or_outlast_the_value_make_the_next_requests_skip_theirs(
    anyio_backend: str,
) -> None:
    # Each answer takes 3 ms, longer than the 100 µs asked: the first wait either runs out (a
    # scheduler tick or two) or gets the answer late, and then the requests skip 1, 2, 4, 8
    # waits before the next: 5 waits for 25 requests, not 25, whatever the tick.
    data_channel = DataChannelOptions(enabled=True, receive_wait=100e-6)
    async with ProcessManager(namespace=namespace()) as manager:
        handle = await manager.spawn("w", **python_worker(), data_channel=data_channel)
        for n in range(25):
            assert await handle.request_via_data("sleep", {"seconds": 0.003, "tag": str(n)})
        stats = handle.stats().data
        assert stats is not None
        if anyio_backend == "asyncio":
            assert 1 <= stats.busy_polls <= 5
        else:
            assert stats.busy_polls == 0


async def test_a_worker_that_dies_during_the_wait_fails_the_request() -> None:
    async with ProcessManager(namespace=namespace()) as manager:
        handle = await manager.spawn(
            "w", **python_worker(), data_channel=DataChannelOptions(enabled=True, receive_wait=0.01)
        )
        assert await handle.request_via_data("add", {"a": 1, "b": 1}) == 2
        with anyio.fail_after(10), pytest.raises(WorkerCrashed):
            await handle.request_via_data("crash", {"code": 3})


async def test_a_large_answer_after_a_wait_arrives_whole() -> None:
    # The wait reads what comes first; a 3 MiB answer comes in many reads, most after it.
    payload = bytes(range(256)) * (3 * 4096)
    data_channel = DataChannelOptions(enabled=True, receive_wait=200e-6)
    async with ProcessManager(namespace=namespace()) as manager:
        handle = await manager.spawn("w", **python_worker(), data_channel=data_channel)
        for _ in range(3):
            assert await handle.request_via_data("echo", [payload]) == [payload]
        assert await handle.request_via_data("add", {"a": 2, "b": 3}) == 5


@pytest.mark.parametrize("value", [-1e-6, 0.011, float("nan"), True, "1e-4", None])
def test_receive_wait_outside_0_to_10_ms_is_a_value_error_naming_it(value: Any) -> None:
    with pytest.raises(ValueError, match=r"receive_wait must be a number of seconds from 0"):
        DataChannelOptions(enabled=True, receive_wait=value)


def test_the_socket_transport_never_blocks_a_send_even_on_a_blocking_socket() -> None:
    # While the reader waits in the receive call its socket is in blocking mode, and a thread
    # of the blocking API may write meanwhile: a send that finds no room must return, not wait
    # for the peer to read. Here the peer reads nothing; the sends run in a thread, watched.
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        transport = SocketTransport(ours)
        ours.setblocking(True)  # as during a wait
        counts: list[int] = []

        def fill() -> None:
            chunk = [bytes(64 * 1024)]
            while True:
                count = transport.send_nowait(chunk)
                counts.append(count)
                if count == 0:
                    return

        thread = threading.Thread(target=fill, daemon=True)
        thread.start()
        thread.join(10)
        assert not thread.is_alive(), "a send blocked on a full socket"
        assert counts[-1] == 0 and sum(counts) > 0
    finally:
        ours.close()
        theirs.close()
