"""A request's timeout counts from the call, its wait for room in the write queue included.

Eight requests of 900 KiB to a worker that reads nothing (``freeze``), made together with the
same timeout: the first fills the socket, the others wait for room before they are even
encoded. A request that found room only when the others timed out and were taken back used to
start its timeout then, and failed a whole timeout later than the others. Now all eight fail
together. (What is compared is the spread among them, not a time: a slow machine delays all
eight alike.)
"""

from __future__ import annotations

import time
from typing import Any

import anyio
import pytest
from aspect_ipc import DataChannelOptions, ProcessManager, RequestTimeout

pytestmark = pytest.mark.anyio

TIMEOUT = 2.0


@pytest.mark.parametrize("via", ["control", "data"])
async def test_requests_waiting_for_room_time_out_with_the_others(
    worker: dict[str, Any], namespace: str, via: str
) -> None:
    returned: list[float] = []
    async with ProcessManager(namespace=namespace, shutdown_grace=0.5) as manager:
        handle = await manager.spawn(
            "w", **worker, data_channel=DataChannelOptions(enabled=True)
        )
        with pytest.raises(RequestTimeout):
            await handle.request("freeze", timeout=0.3)  # it never answers, nor reads
        await anyio.sleep(0.3)  # frozen for sure (Go: /bin/sleep runs in its place)
        call = handle.request if via == "control" else handle.request_via_data
        big = {"blob": "x" * (900 * 1024)}
        start = time.monotonic()

        async def one() -> None:
            with pytest.raises(RequestTimeout):
                await call("echo", big, timeout=TIMEOUT)
            returned.append(time.monotonic() - start)

        async with anyio.create_task_group() as group:
            for _ in range(8):
                group.start_soon(one)
                await anyio.lowlevel.checkpoint()  # each one sent, or waiting, in turn
        stats = handle.stats()
        assert (stats.control if via == "control" else stats.data).in_flight == 0
    assert len(returned) == 8
    assert max(returned) - min(returned) < TIMEOUT / 2, sorted(returned)
