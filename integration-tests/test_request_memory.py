"""Many small requests leave nothing behind in the parent (issue 19): each request with a
deadline (the manager's request_timeout, 30 s unless set) is entered in its channel's deadline
heap, and the entries of answered requests must go long before their deadlines pass. A parent
that kept them until then grew with the request rate times the timeout: 300 MiB in 20 s at
93,000 requests/s with the default timeout, found by running a pipelined load for a while.
"""

from __future__ import annotations

import tracemalloc
from typing import Any

import anyio
import pytest
from aspect_ipc import DataChannelOptions, ProcessManager

pytestmark = pytest.mark.anyio

LANES = 64
PER_LANE = 300


@pytest.mark.parametrize("via", ["data", "control"])
async def test_answered_requests_do_not_accumulate_in_the_parent(
    worker: dict[str, Any], namespace: str, via: str
) -> None:
    async with ProcessManager(namespace=namespace, request_timeout=600) as manager:
        handle = await manager.spawn(
            "memory",
            executable=worker["executable"],
            args=worker["args"],
            data_channel=DataChannelOptions(enabled=via == "data"),
        )
        call = handle.request_via_data if via == "data" else handle.request

        async def lane() -> None:
            for n in range(PER_LANE):
                assert await call("echo", {"n": n}) == {"n": n}

        async def load() -> None:
            async with anyio.create_task_group() as tasks:
                for _ in range(LANES):
                    tasks.start_soon(lane)

        with anyio.fail_after(120):
            await load()  # warm: buffers, caches, the first heap rebuilds
            tracemalloc.start()
            try:
                before = tracemalloc.get_traced_memory()[0]
                await load()
                grown = tracemalloc.get_traced_memory()[0] - before
            finally:
                tracemalloc.stop()
        requests = LANES * PER_LANE
        # Kept per answered request before the fix: about 120 bytes (a heap entry).
        assert grown < 20 * requests, (
            f"{grown} bytes kept after {requests} answered requests"
        )
        await handle.stop()
