"""Requests sent on the data channel just before a stop are run, not refused (PROTOCOL.md 8.1).

``$/shutdown`` travels on control, the requests on data, and the two channels are not ordered:
a worker whose control reader sees ``$/shutdown`` before its data reader has read the requests
already waiting in its socket used to refuse them ``-32004`` (the Go worker, a third of them in a
drill; the Python and Node workers once a few megabytes wait). The parent now sends ``$/ping`` on
data first and waits for its answer, which comes once the worker has taken in every request
before it; only what is sent after the stop began is refused.
"""

from __future__ import annotations

from typing import Any

import anyio
import anyio.lowlevel
import pytest
from aspect_ipc import ChannelClosed, DataChannelOptions, ProcessManager, RemoteError

pytestmark = pytest.mark.anyio

REQUESTS = 300


@pytest.mark.parametrize("size", [0, 16 * 1024])
@pytest.mark.parametrize("trial", range(2))
async def test_data_requests_sent_before_stop_are_answered(
    worker: dict[str, Any], namespace: str, trial: int, size: int
) -> None:
    blob = b"\x07" * size  # 300 of 16 KiB: more than a worker's socket holds at once
    results: dict[int, Any] = {}
    async with ProcessManager(namespace=namespace) as manager:
        handle = await manager.spawn(
            "w", **worker, data_channel=DataChannelOptions(enabled=True)
        )
        await handle.request_via_data("echo", ["warm"])  # the data channel is open

        async def call(i: int) -> None:
            try:
                results[i] = await handle.request_via_data(
                    "echo", [i, blob], timeout=30
                )
            except Exception as exc:  # noqa: BLE001 - what it is, is the test
                results[i] = exc

        async with anyio.create_task_group() as group:
            for i in range(REQUESTS):
                group.start_soon(call, i)
            # Every call runs to its first wait, its request sent (or queued), before the stop.
            await anyio.lowlevel.checkpoint()
            await handle.stop()
        assert handle.exit_code == 0
    refused = {i: r for i, r in results.items() if isinstance(r, BaseException)}
    assert not refused, (
        f"{len(refused)} of {REQUESTS} requests sent before stop() failed, e.g. "
        f"{next(iter(refused.values()))!r}"
    )
    assert results == {i: [i, blob] for i in range(REQUESTS)}


async def test_a_large_request_still_being_written_when_stop_is_called_is_answered(
    worker: dict[str, Any], namespace: str
) -> None:
    # 4 MiB do not fit in the socket's buffers: most of the frame is still in the parent's
    # queue when stop() is called. The $/ping goes out behind it, and its answer (the worker
    # has taken the request in) comes before the $/shutdown is sent.
    payload = b"\x5a" * (4 * 1024 * 1024)
    outcome: list[Any] = []
    async with ProcessManager(namespace=namespace) as manager:
        handle = await manager.spawn(
            "w", **worker, data_channel=DataChannelOptions(enabled=True)
        )
        await handle.request_via_data("echo", ["warm"])

        async def call() -> None:
            try:
                outcome.append(
                    await handle.request_via_data("echo", [payload], timeout=30)
                )
            except Exception as exc:  # noqa: BLE001 - what it is, is the test
                outcome.append(exc)

        async with anyio.create_task_group() as group:
            group.start_soon(call)
            await anyio.lowlevel.checkpoint()  # the call has begun writing its request
            await handle.stop()
    assert len(outcome) == 1
    assert not isinstance(outcome[0], BaseException), outcome[0]
    assert outcome[0] == [payload]


async def test_a_request_made_after_stop_began_fails_clearly(
    worker: dict[str, Any], namespace: str
) -> None:
    async with ProcessManager(namespace=namespace) as manager:
        handle = await manager.spawn(
            "w", **worker, data_channel=DataChannelOptions(enabled=True)
        )
        await handle.request_via_data("echo", ["warm"])
        async with anyio.create_task_group() as group:
            group.start_soon(handle.stop)
            await anyio.sleep(
                0.2
            )  # the stop is under way: $/shutdown sent, or the worker gone
            with pytest.raises((ChannelClosed, RemoteError)) as caught:
                await handle.request_via_data("echo", ["late"], timeout=10)
        if isinstance(caught.value, RemoteError):
            assert caught.value.code == -32004
